"""An API key's filter inside retrieval: `$and`, `scoped`, `matches`, and the knowledge
base's reads and writes under an owner filter (two tenants in one index)."""

import random

import pytest

from retrieval.errors import DocumentIdTakenError, InvalidInputError
from retrieval.filters import compile_filter, equalities, matches, scoped
from retrieval.knowledge_base import Document
from retrieval.spec import IndexSpec

A, B = {"tenant": "a"}, {"tenant": "b"}
ZEBRA = "The zebra named Quill lives in the Lantern Valley and eats blue grass."
OTTER = "The otter named Fenwick runs the ferry across the Copper River every morning."


def test_and_narrows_and_requests_cannot_widen_a_key_filter():
    assert scoped(None, {"x": 1}) == {"x": 1}
    assert scoped(A, None) == A and scoped(A, {}) == A
    assert scoped(A, B) == {"$and": [A, B]}
    sql, params = compile_filter(scoped(A, {"tenant": {"$ne": "a"}}))
    assert sql.count("AND") == 1 and params == ["a", "a"]
    # There is no way to say "or": anything else is refused, whatever it is nested in.
    for bad in ({"$or": [A, B]}, {"$and": [A, {"$or": [B]}]}, {"$and": []},
                {"$and": A}, {"$and": [A] * 17}, {"$not": A}):
        with pytest.raises(InvalidInputError):
            compile_filter(scoped(A, bad))


@pytest.mark.parametrize("spec", [
    {"tenant": "a"}, {"tenant": {"$ne": "a"}}, {"year": {"$gt": 2020}},
    {"year": {"$lte": 2020}}, {"tenant": {"$in": ["a", "c"]}}, {"tenant": {"$nin": ["a"]}},
    {"$and": [{"tenant": "a"}, {"year": {"$gte": 2021}}]}, {"doc_id": "d1"},
    {"missing": {"$ne": 1}}, {"year": {"$lt": "x"}}, {"flag": True},
])
def test_matches_agrees_with_the_sql(registry, spec):
    """The Python check of writes and the SQL of reads must say the same."""
    kb = registry.create("kb", IndexSpec(type="flat"))
    rng = random.Random(7)
    docs = []
    for i in range(12):
        meta = {"tenant": rng.choice("abc"), "year": rng.choice([2019, 2020, 2021, 2024])}
        if i % 3 == 0:
            meta["flag"] = rng.choice([True, False])
        if i == 5:
            del meta["tenant"]
        docs.append(Document(doc_id=f"d{i}", text=f"{ZEBRA} {i}", metadata=meta))
    kb.add_documents(docs)
    by_sql = {d["doc_id"] for d in kb.documents(spec, limit=100)}
    by_python = {d.doc_id for d in docs if matches(spec, {"doc_id": d.doc_id, "title": d.title,
                                                          "metadata": d.metadata})}
    assert by_sql == by_python


def test_equalities_are_what_a_write_is_stamped_with():
    assert equalities({"tenant": "a", "year": {"$gt": 1}}) == {"tenant": "a"}
    assert equalities({"$and": [{"tenant": {"$eq": "a"}}, {"team": "x"}]}) == {
        "tenant": "a", "team": "x"}
    assert equalities({"doc_id": "x"}) == {}


def test_two_tenants_in_one_index(registry):
    kb = registry.create("shared", IndexSpec(type="flat"))
    # Writes under a filter are stamped, in the key's namespace; a document claiming
    # another tenant is refused.
    assert kb.add_documents([Document(doc_id="a1", text=ZEBRA)], owner=A) == [
        {"doc_id": "a1", "status": "added", "chunks": 1}]
    kb.add_documents([Document(doc_id="b1", text=OTTER, metadata={"tenant": "b"})], owner=B)
    assert kb.document("tenant=a/a1")["metadata"] == {"tenant": "a"}
    assert kb.document("a1") is None  # stored as tenant=a/a1
    with pytest.raises(InvalidInputError, match="metadata.tenant"):
        kb.add_documents([Document(doc_id="a2", text=OTTER, metadata={"tenant": "b"})],
                         owner=A)
    with pytest.raises(InvalidInputError, match="filter"):
        kb.add_documents([Document(doc_id="a3", text=OTTER)],
                         owner={"tenant": {"$in": ["a", "c"]}})
    with pytest.raises(InvalidInputError, match="doc_id"):  # no way into another namespace
        kb.add_documents([Document(doc_id="tenant=b/b1", text=OTTER)], owner=A)
    # Reads: the other tenant's documents do not exist.
    assert kb.document("b1", owner=A) is None
    assert kb.document("a1", owner=A)["doc_id"] == "a1"
    assert [d["doc_id"] for d in kb.documents(owner=A)] == ["a1"]
    assert {h["doc_id"] for h in kb.search("otter ferry zebra", 5, owner=A)} == {"a1"}
    assert kb.search("otter", 5, {"tenant": "b"}, owner=A) == []
    assert kb.search("otter", 5, {"doc_id": "b1"}, owner=A) == []
    assert [h["doc_id"] for h in kb.search("zebra", 5, {"doc_id": {"$in": ["a1"]}},
                                           owner=A)] == ["a1"]
    assert kb.stats(A)["documents"] == 1 and "vectors" not in kb.stats(A)
    assert kb.stats()["documents"] == 2
    # The same doc_id in both namespaces: two documents; B's is never touched by A.
    assert kb.add_documents([Document(doc_id="b1", text="A's own b1")], owner=A)[0][
        "status"] == "added"
    assert kb.document("b1", owner=B)["content_hash"] != kb.document("b1", owner=A)[
        "content_hash"]
    assert kb.delete_document("b1", owner=A) is True
    assert kb.document("b1", owner=B)["metadata"] == {"tenant": "b"}
    assert kb.delete_document("b1", owner=A) is False
    # A filter that pins no field has no namespace: a doc_id held outside it is refused.
    kb.add_documents([Document(doc_id="plain", text=OTTER, metadata={"tenant": "b"})])
    spread = {"tenant": {"$in": ["a", "c"]}}
    with pytest.raises(DocumentIdTakenError):
        kb.add_documents([Document(doc_id="plain", text="x", metadata={"tenant": "a"})],
                         owner=spread)
    with pytest.raises(DocumentIdTakenError):  # B's text exactly: not "unchanged" either
        kb.add_documents([Document(doc_id="plain", text=OTTER, metadata={"tenant": "a"})],
                         owner=spread)
    with pytest.raises(DocumentIdTakenError):  # one foreign id fails the whole batch
        kb.add_documents([Document(doc_id="new", text=ZEBRA, metadata={"tenant": "a"}),
                          Document(doc_id="plain", text=ZEBRA, metadata={"tenant": "a"})],
                         owner=spread)
    assert kb.document("new") is None
    assert kb.delete_document("plain", owner=spread) is False
    assert kb.document("plain")["metadata"] == {"tenant": "b"}
    # A replaces and deletes its own.
    assert kb.add_documents([Document(doc_id="a1", text=OTTER)], owner=A)[0]["status"] == \
        "replaced"
    assert kb.delete_document("a1", owner=A) is True
    assert kb.stats()["documents"] == 2


def test_namespaces_translate_doc_id_conditions():
    from retrieval.namespaces import Namespace

    ns = Namespace({"$and": [{"tenant": "a"}, {"team": {"$eq": "x"}}], "year": {"$gt": 1}})
    assert ns.prefix == "team=x&tenant=a/"
    assert ns.filter({"doc_id": "d", "$and": [{"doc_id": {"$nin": ["e", 3]}}], "k": "d"}) == {
        "doc_id": "team=x&tenant=a/d", "$and": [{"doc_id": {"$nin": [
            "team=x&tenant=a/e", 3]}}], "k": "d"}
    assert ns.client("other/x") == "other/x" and ns.client(ns.stored("x")) == "x"
    assert Namespace({"tenant": {"$in": ["a"]}}).prefix == ""
    assert Namespace(None).filter({"doc_id": "d"}) == {"doc_id": "d"}


def test_document_listing_pages_by_doc_id(registry):
    kb = registry.create("kb", IndexSpec(type="flat"))
    kb.add_documents([Document(doc_id=f"d{i:02d}", text=f"{ZEBRA} {i}") for i in range(7)])
    first = kb.documents(None, limit=3)
    rest = kb.documents(None, limit=10, after=first[-1]["doc_id"])
    assert [d["doc_id"] for d in first + rest] == [f"d{i:02d}" for i in range(7)]
    assert "text" not in first[0]
    with pytest.raises(InvalidInputError):
        kb.documents(None, limit=0)
