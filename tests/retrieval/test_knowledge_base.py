"""Knowledge base: add/replace/delete semantics, no-op re-ingest, persistence, replicas."""

import json

import numpy as np
import pytest

from retrieval.errors import IndexExistsError, IndexNotFoundError, InvalidInputError
from retrieval.knowledge_base import Document
from retrieval.registry import IndexRegistry
from retrieval.spec import IndexSpec
from serving.errors import from_domain_error

ZEBRA = "The zebra named Quill lives in the Lantern Valley and eats blue grass."
OTTER = "The otter named Fenwick runs the ferry across the Copper River every morning."


def doc(doc_id, text, **kw):
    return Document(doc_id=doc_id, text=text, **kw)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_add_search_replace_delete(registry, kind):
    kb = registry.create("kb", IndexSpec(type=kind))
    assert [r["status"] for r in kb.add_documents([doc("z", ZEBRA), doc("o", OTTER)])] == [
        "added", "added"]
    hits = kb.search("Who runs the ferry?", top_k=2)
    assert hits[0]["doc_id"] == "o" and hits[0]["score"] > hits[1]["score"]
    assert {"chunk_id", "title", "section", "text", "metadata", "start", "end"} <= set(hits[0])

    assert kb.add_documents([doc("z", ZEBRA)])[0]["status"] == "unchanged"
    kb.add_documents([doc("o", "The otter Fenwick retired; the ferry now runs itself.")])
    texts = [h["text"] for h in kb.search("ferry", top_k=5)]
    assert all("every morning" not in t for t in texts)  # replaced text never served

    assert kb.delete_document("o") is True
    assert kb.delete_document("o") is False
    assert all(h["doc_id"] != "o" for h in kb.search("otter ferry", top_k=5))
    assert kb.stats()["documents"] == 1


def test_metadata_filters(registry):
    kb = registry.create("kb", IndexSpec(type="flat"))
    kb.add_documents([doc("z", ZEBRA, metadata={"team": "a", "year": 2020}),
                      doc("o", OTTER, metadata={"team": "b", "year": 2024})])
    assert {h["doc_id"] for h in kb.search("animal", 5, {"team": "a"})} == {"z"}
    assert {h["doc_id"] for h in kb.search("animal", 5, {"year": {"$gte": 2021}})} == {"o"}
    assert {h["doc_id"] for h in kb.search("animal", 5, {"doc_id": {"$in": ["z", "o"]}})} == {
        "z", "o"}
    assert kb.search("animal", 5, {"team": "none"}) == []
    for bad in ([1], {"team": {"$regex": "a"}}, {"team": [1]}, {"bad key!": 1},
                {"year": {"$in": []}}):
        with pytest.raises(InvalidInputError):
            kb.search("animal", 5, bad)


def test_bad_documents_change_nothing(registry):
    kb = registry.create("kb", IndexSpec(type="flat", max_document_chars=1000))
    kb.add_documents([doc("z", ZEBRA)])
    before = kb.stats()
    for batch in ([doc("e", "   ")], [doc("big", "x" * 1001)], [doc("a/b", "text")],
                  [doc("ok", OTTER), doc("ok", OTTER)], [doc("ok", OTTER), doc("", "t")]):
        with pytest.raises(InvalidInputError) as info:
            kb.add_documents(batch)
        assert from_domain_error(info.value).status in (400, 413)
    assert kb.stats() == before
    for top_k in (0, 101, "3"):
        with pytest.raises(InvalidInputError):
            kb.search("zebra", top_k)


def test_html_documents(registry):
    kb = registry.create("kb", IndexSpec(type="flat"))
    kb.add_documents([doc("h", f"<html><title>Zoo</title><h1>Zebra</h1><p>{ZEBRA}</p></html>",
                          format="html")])
    hit = kb.search("zebra valley", 1)[0]
    assert hit["title"] == "Zoo" and hit["section"] == "Zebra" and "<p>" not in hit["text"]


def test_persistence_round_trip_with_and_without_snapshot(tmp_path, embedder):
    reg = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    kb = reg.create("kb", IndexSpec(type="hnsw"))
    kb.add_documents([doc("z", ZEBRA)])
    kb.snapshot()
    kb.add_documents([doc("o", OTTER)])  # after the snapshot: must be replayed
    kb.delete_document("z")
    reg.close()
    again = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder).get("kb")
    assert [h["doc_id"] for h in again.search("ferry otter", 5)] == ["o"]
    assert again.stats()["vectors"] == again.stats()["chunks"]
    for p in (tmp_path / "indexes" / "kb").glob("faiss-*.index"):
        p.unlink()  # no snapshot at all: rebuilt from stored embeddings
    rebuilt = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder).get("kb")
    assert [h["doc_id"] for h in rebuilt.search("ferry otter", 5)] == ["o"]


def test_two_replicas_sharing_the_store_stay_consistent(tmp_path, embedder):
    a = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    b = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    a.create("kb", IndexSpec(type="hnsw")).add_documents([doc("z", ZEBRA)])
    kb_b = b.get("kb")  # created by the other replica
    assert kb_b.search("zebra", 1)[0]["doc_id"] == "z"
    kb_b.add_documents([doc("o", OTTER)])
    a.get("kb").delete_document("z")
    assert [h["doc_id"] for h in a.get("kb").search("animal", 5)] == ["o"]
    assert [h["doc_id"] for h in kb_b.search("animal", 5)] == ["o"]
    a.delete("kb")
    with pytest.raises(IndexNotFoundError):
        b.get("kb")


def test_registry_errors(registry):
    registry.create("kb", IndexSpec())
    with pytest.raises(IndexExistsError):
        registry.create("kb", IndexSpec())
    with pytest.raises(IndexNotFoundError):
        registry.get("missing")
    with pytest.raises(InvalidInputError):
        registry.create("../etc", IndexSpec())
    assert registry.names() == ["kb"]


def test_index_recreated_by_another_replica_is_reopened(tmp_path, embedder):
    a = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    b = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    a.create("kb", IndexSpec(type="flat")).add_documents([doc("z", ZEBRA)])
    assert b.get("kb").stats()["documents"] == 1
    a.delete("kb")
    a.create("kb", IndexSpec(type="flat")).add_documents([doc("o", OTTER)])
    assert [h["doc_id"] for h in b.get("kb").search("animal", 5)] == ["o"]


def test_small_batches_embed_exactly_like_sentence_transformers():
    from retrieval.embedder import SMALL_BATCH, Embedder

    e = Embedder("builtin:all-minilm-l6-v2")
    assert e.query_encoder is not None  # CPU: queries go through the ONNX export
    texts = ["Where is the seed vault?", "x", "a long query " * 400][:SMALL_BATCH]
    expected = e.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert np.abs(e.encode(texts) - expected).max() < 1e-5
    assert np.abs(e._encode_small(texts) - expected).max() < 1e-5  # the torch fallback


def test_query_encoder_can_be_turned_off():
    from retrieval.embedder import Embedder

    e = Embedder("builtin:all-minilm-l6-v2", query_encoder="torch")
    assert e.query_encoder is None and e.search_encoder is None
    with pytest.raises(ValueError, match="query_encoder"):
        Embedder("builtin:all-minilm-l6-v2", query_encoder="int4")


def test_int8_query_vectors_stay_close_and_rank_alike(embedder):
    from retrieval.embedder import Embedder

    e = Embedder("builtin:all-minilm-l6-v2", query_encoder="onnx-int8")
    assert e.search_encoder is not None and e.search_encoder is not e.query_encoder
    queries = ["Who holds the keys to the seed vault?", "otter habitat in rivers",
               "What did the board decide about the budget in September?"]
    exact, fast = e.encode(queries), e.encode_query(queries)
    assert np.all(np.sum(exact * fast, axis=1) > 0.97)
    assert np.abs(e.encode(queries) - e.model.encode(queries, normalize_embeddings=True)
                  ).max() < 1e-5  # encode (documents, /v1/embeddings) stays exact
    docs = e.encode([OTTER, "The seed vault keys are held by the archivist.",
                     "The board approved the 2025 budget on 17 September.", "Tea and cake."])
    assert [int(np.argmax(docs @ v)) for v in fast] == [int(np.argmax(docs @ v)) for v in exact]


def test_query_encoder_that_disagrees_with_torch_is_not_used(monkeypatch):
    from retrieval import embedder as mod

    real_export = mod.OnnxQueryEncoder._export

    def skewed(cls, e):
        enc = real_export(e)
        enc.encode = lambda texts: np.roll(real_encode(enc, texts), 1, axis=1)
        return enc

    real_encode = mod.OnnxQueryEncoder.encode
    monkeypatch.setattr(mod.OnnxQueryEncoder, "_export", classmethod(skewed))
    assert mod.Embedder("builtin:all-minilm-l6-v2").query_encoder is None


ZORVATH = "# Zorvath Station\n\n## Power\n\nThe reactor delivers 40 kW to the base."
KESTREL = "# Kestrel Outpost\n\n## Power\n\nThe reactor delivers 12 kW to the base."


def test_chunks_are_embedded_with_their_heading_path(tmp_path, registry, embedder):
    """A new index embeds 'heading path\\ntext' (the text stays the chunk's); an index
    created before the setting existed keeps embedding the text alone."""
    kb = registry.create("kb", IndexSpec(type="flat"))
    plain = registry.create("plain", IndexSpec(type="flat", embed_headings=False))
    assert kb.spec.embed_headings is True and plain.spec.embed_headings is False
    for index in (kb, plain):
        index.add_documents([doc("z", ZORVATH), doc("k", KESTREL)])
    for index, headed in ((kb, True), (plain, False)):
        ids, vectors = index.store.embeddings()
        ids = [int(i) for i in ids]
        rows = index.store.chunk_rows(ids)
        texts = [(f"{rows[i]['section']}\n" if headed else "") + rows[i]["text"] for i in ids]
        assert np.allclose(vectors, embedder.encode(texts), atol=1e-5)
        source = {"z": ZORVATH, "k": KESTREL}
        assert all(r["text"] == source[r["doc_id"]][r["start"]:r["end"]]
                   for r in rows.values())  # the stored text is the document's own
    question = "How much power does the reactor at Zorvath Station deliver?"
    assert kb.search(question, 1)[0]["doc_id"] == "z"

    spec_file = tmp_path / "indexes" / "kb" / "index.json"
    saved = json.loads(spec_file.read_text())
    del saved["spec"]["embed_headings"]  # as written before the setting existed
    spec_file.write_text(json.dumps(saved))
    reopened = IndexRegistry(tmp_path, embedder_factory=lambda name: embedder)
    try:
        assert reopened.get("kb").spec.embed_headings is False
    finally:
        reopened.close()
