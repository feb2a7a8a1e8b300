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
    # Writes under a filter are stamped; a document claiming another tenant is refused.
    assert kb.add_documents([Document(doc_id="a1", text=ZEBRA)], owner=A)[0]["status"] == "added"
    kb.add_documents([Document(doc_id="b1", text=OTTER, metadata={"tenant": "b"})], owner=B)
    assert kb.document("a1")["metadata"] == {"tenant": "a"}
    with pytest.raises(InvalidInputError, match="metadata.tenant"):
        kb.add_documents([Document(doc_id="a2", text=OTTER, metadata={"tenant": "b"})],
                         owner=A)
    with pytest.raises(InvalidInputError, match="filter"):
        kb.add_documents([Document(doc_id="a3", text=OTTER)],
                         owner={"tenant": {"$in": ["a", "c"]}})
    # Reads: the other tenant's documents do not exist.
    assert kb.document("b1", owner=A) is None and kb.document("a1", owner=A) is not None
    assert [d["doc_id"] for d in kb.documents(A)] == ["a1"]
    assert {h["doc_id"] for h in kb.search("otter ferry zebra", 5, scoped(A, None))} == {"a1"}
    assert {h["doc_id"] for h in kb.search("otter", 5, scoped(A, {"tenant": "b"}))} == set()
    assert kb.stats(A)["documents"] == 1 and "vectors" not in kb.stats(A)
    assert kb.stats()["documents"] == 2
    # Writes: B's document is neither replaced nor deleted through A's key.
    with pytest.raises(DocumentIdTakenError):
        kb.add_documents([Document(doc_id="b1", text="hijacked")], owner=A)
    with pytest.raises(DocumentIdTakenError):  # B's text exactly: not "unchanged" either
        kb.add_documents([Document(doc_id="b1", text=OTTER)], owner=A)
    with pytest.raises(DocumentIdTakenError):  # one foreign id fails the whole batch
        kb.add_documents([Document(doc_id="a9", text=ZEBRA), Document(doc_id="b1",
                                                                      text=ZEBRA)], owner=A)
    assert kb.document("a9") is None
    assert kb.delete_document("b1", owner=A) is False
    assert kb.document("b1")["metadata"] == {"tenant": "b"}
    # A replaces and deletes its own.
    assert kb.add_documents([Document(doc_id="a1", text=OTTER)], owner=A)[0]["status"] == \
        "replaced"
    assert kb.delete_document("a1", owner=A) is True
    assert kb.stats()["documents"] == 1


def test_document_listing_pages_by_doc_id(registry):
    kb = registry.create("kb", IndexSpec(type="flat"))
    kb.add_documents([Document(doc_id=f"d{i:02d}", text=f"{ZEBRA} {i}") for i in range(7)])
    first = kb.documents(None, limit=3)
    rest = kb.documents(None, limit=10, after=first[-1]["doc_id"])
    assert [d["doc_id"] for d in first + rest] == [f"d{i:02d}" for i in range(7)]
    assert "text" not in first[0]
    with pytest.raises(InvalidInputError):
        kb.documents(None, limit=0)
