"""Hybrid search: the FTS5 side of the store, safe queries, rank fusion, settings.

Most tests use a table embedder (exact text -> chosen vector), so that dense
ranks are set by hand and the fused order can be computed by hand.
"""

import hashlib
import json
import sqlite3

import numpy as np
import pytest

from retrieval.chunker import Chunk
from retrieval.knowledge_base import Document
from retrieval.lexical import TermCounts, fts_query, query_terms, rrf, select_terms
from retrieval.registry import IndexRegistry
from retrieval.spec import IndexSpec, SearchSettings

HYBRID = SearchSettings(mode="hybrid")  # new indexes are dense by default
from retrieval.store import SCHEMA, DocumentStore
from serving import rag
from serving.route_settings import RetrievalSettings

DIM = 16
QUERY = "Where is order PK-4471 now?"
TARGET = "Order PK-4471 left the Ostbridge depot on Tuesday."
DECOYS = [f"Shipment note {i}: a parcel for the northern depot, left on a weekday."
          for i in range(12)]


def unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def at_cosine(c, axis):
    """A unit vector at cosine `c` from e0 (the query), leaning towards e_axis."""
    v = np.zeros(DIM, dtype=np.float32)
    v[0], v[axis] = c, np.sqrt(1 - c * c)
    return v


class TableEmbedder:
    """Exact text -> vector; any other text gets a fixed pseudo-random unit vector."""

    dim = DIM

    def __init__(self, table=None):
        self.table = dict(table or {})

    def encode(self, texts):
        return np.stack([self.table[t] if t in self.table else self._other(t) for t in texts])

    encode_query = encode

    @staticmethod
    def _other(text):
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        return unit(np.random.default_rng(seed).standard_normal(DIM))

    def count_tokens(self, text):
        return len(text.split())


@pytest.fixture
def embedder():
    table = {QUERY: unit(np.eye(DIM)[0]), TARGET: at_cosine(0.2, 1)}
    for i, text in enumerate(DECOYS):  # cosine 0.9, 0.86, ... 0.46: all above the target
        table[text] = at_cosine(0.9 - 0.04 * i, 2 + i % (DIM - 2))
    return TableEmbedder(table)


def fill(kb):
    docs = [Document(doc_id=f"decoy{i}", text=t, metadata={"team": "b"})
            for i, t in enumerate(DECOYS)]
    kb.add_documents([*docs, Document(doc_id="target", text=TARGET, metadata={"team": "a"})])


def chunk_store(path):
    return DocumentStore(path / "store.sqlite")


def put(store, doc_id, texts, title="T"):
    chunks = [Chunk(doc_id, i, t, title, "", 0, len(t)) for i, t in enumerate(texts)]
    vectors = np.stack([TableEmbedder._other(t) for t in texts])
    return store.upsert_many([{"doc_id": doc_id, "title": title, "metadata": {},
                               "text": "\n\n".join(texts), "digest": doc_id, "chunks": chunks,
                               "vectors": vectors}])


def lexical_docs(store, query):
    ids = store.lexical_ids(fts_query(query), 50)
    return sorted({r["doc_id"] for r in store.chunk_rows(ids).values()})


# -- FTS5 kept in the chunks' transactions ---------------------------------------------


def test_fts_follows_add_replace_delete_and_survives_reopening(tmp_path):
    store = chunk_store(tmp_path)
    put(store, "a", ["The quartz lantern is kept in hall PK-4471.", "Second chunk about ferns."])
    put(store, "b", ["Ferns grow near the river."])
    assert lexical_docs(store, "PK-4471") == ["a"]
    assert lexical_docs(store, "ferns") == ["a", "b"]

    put(store, "a", ["The lantern moved to hall ZX-9."])  # replaced: old text is gone
    assert lexical_docs(store, "PK-4471") == []
    assert lexical_docs(store, "ferns") == ["b"]
    assert lexical_docs(store, "ZX-9") == ["a"]

    store.delete("b")
    assert lexical_docs(store, "ferns") == []
    store.close()

    again = chunk_store(tmp_path)
    assert lexical_docs(again, "zx-9 lantern") == ["a"]
    fts = again.db.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
    assert fts == again.stats()["chunks"] == 1
    again.close()


def test_fts_rolls_back_with_a_failed_write(tmp_path):
    store = chunk_store(tmp_path)
    put(store, "keep", ["Nothing to see."])
    good = {"doc_id": "new", "title": "", "metadata": {}, "text": "x", "digest": "1",
            "chunks": [Chunk("new", 0, "Quokka sightings", "", "", 0, 16)],
            "vectors": np.zeros((1, DIM), dtype=np.float32)}
    bad = {**good, "doc_id": "bad", "chunks": [Chunk("bad", 0, object(), "", "", 0, 1)]}
    with pytest.raises(sqlite3.Error):
        store.upsert_many([good, bad])  # the second document fails mid-transaction
    assert lexical_docs(store, "quokka") == []
    assert store.db.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0] == 1
    store.close()


def test_store_from_before_fts_is_upgraded_and_backfilled(tmp_path):
    db = sqlite3.connect(tmp_path / "store.sqlite")
    db.executescript(SCHEMA)  # the schema as it was, no chunks_fts
    db.execute("INSERT INTO documents VALUES('old', 'Gazetteer', '{}', 'h', 't', 0)")
    for i, text in enumerate(["Kestrel Point lighthouse", "Harbour PK-4471 dues"]):
        db.execute("INSERT INTO chunks(doc_id, chunk_index, text, section, start, end, "
                   "embedding) VALUES('old', ?, ?, 'Coast', 0, 1, ?)",
                   (i, text, np.zeros(DIM, dtype=np.float32).tobytes()))
    db.commit()
    db.close()

    store = chunk_store(tmp_path)
    assert lexical_docs(store, "kestrel") == ["old"]
    assert lexical_docs(store, "gazetteer coast") == ["old"]  # title and section indexed
    assert lexical_docs(store, "PK-4471") == ["old"]
    store.close()
    again = chunk_store(tmp_path)  # upgraded once: opening again changes nothing
    assert again.db.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0] == 2
    again.delete("old")  # the triggers work on an upgraded store too
    assert again.db.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0] == 0
    again.close()


# -- queries -----------------------------------------------------------------------------

NASTY = ['"', '""', '"unbalanced', "*", "a*", "NEAR(", "NEAR(a b, 3)", "AND", "OR", "NOT",
         "a AND", "AND OR NOT", "-", "--x", "-PK-4471", ":", "text:quartz", "title : x",
         "(", ")", "((a)", "{a b}", "^start", "+plus", "col:*", "'", "\\", "\x00",
         "the of and is", "¿qué?", "Zürich café", "日本語の文書", "🙂 emoji", "ǅ", "PK-4471",
         "v1.2.3", "x_y", "a" * 5000, "word " * 400, "%", "_", "?"]


@pytest.mark.parametrize("query", NASTY)
def test_no_query_breaks_fts(tmp_path, query):
    store = chunk_store(tmp_path)
    put(store, "a", ["The quartz lantern is in hall PK-4471, Zürich café, 日本語の文書."])
    match = fts_query(query)
    assert match is None or isinstance(store.lexical_ids(match, 20), list)
    store.close()


@pytest.mark.parametrize("query", NASTY)
def test_no_query_breaks_hybrid_search(registry, query):
    kb = registry.create("kb", IndexSpec(type="flat", search=HYBRID))
    kb.add_documents([Document(doc_id="a", text=TARGET)])
    if query.strip():
        assert isinstance(kb.search(query, 3), list)


def test_query_terms_match_the_fts_tokenizer():
    assert query_terms("What is the status of order PK-4471?") == [
        "status", "order", "pk 4471", "pk", "4471"]
    assert query_terms("the and of it's") == []
    assert fts_query('say "hi"') == '"say" OR "hi"'
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == 32


def test_common_terms_are_left_to_the_dense_side(registry):
    kb = registry.create("kb", IndexSpec(type="flat", search=HYBRID))
    fill(kb)
    kb.add_documents([Document(doc_id=f"d{i}", text=f"The depot log, page {i}.")
                      for i in range(30)])
    asked = []
    real = kb.store.lexical_ids
    kb.store.lexical_ids = lambda match, *a: asked.append(match) or real(match, *a)
    assert kb.search("depot PK-4471", 3)[0]["doc_id"] == "target"
    assert asked == ['"pk 4471" OR "pk" OR "4471"']  # "depot" is in 43 chunks: budget 10
    kb.spec = kb.spec.model_copy(update={"search": SearchSettings(mode="hybrid", lexical_share=1.0)})
    kb.search("depot", 3)  # 43 of 43 chunks: within a share of 1.0
    assert asked[-1] == '"depot"'


def test_select_terms_and_budget():
    counts = {"order": 50, "pk": 2, "4471": 1, "depot": 9}
    terms = ["order", "depot", "pk 4471", "pk", "4471"]
    assert select_terms(terms, counts, 10) == ["pk 4471", "pk", "4471"]  # 1 + 2 + 1 (+9)
    assert select_terms(terms, counts, 13) == ["depot", "pk 4471", "pk", "4471"]
    assert select_terms(["new"], {}, 0) == ["new"]  # unknown to the index: costs nothing
    assert SearchSettings().lexical_budget(123) == 10
    assert SearchSettings().lexical_budget(10_000) == 500
    assert SearchSettings().lexical_budget(1_000_000) == 1000


def test_term_counts_are_cached_until_enough_chunks_change():
    calls = []

    def lookup(tokens):
        calls.append(tokens)
        return {t: 7 for t in tokens}

    counts = TermCounts(lookup, min_churn=100, churn_share=0.5)
    assert counts.get(["a", "b"]) == {"a": 7, "b": 7}
    assert counts.get(["b", "c", "c"]) == {"b": 7, "c": 7}
    assert calls == [["a", "b"], ["c"]]
    counts.changed(60, live=100)
    counts.get(["a"])
    assert len(calls) == 2  # 60 changed chunks < max(100, 50): still cached
    counts.changed(60, live=100)
    counts.get(["a"])
    assert calls[-1] == ["a"]


def test_code_added_after_it_was_searched_is_found(registry):
    kb = registry.create("kb", IndexSpec(type="flat", search=HYBRID))
    fill(kb)
    assert all("ZQ-9" not in h["text"] for h in kb.search("Where is ZQ-9?", 3))  # counted: 0
    kb.add_documents([Document(doc_id="late", text="Crate ZQ-9 waits at the ferry.")])
    assert kb.search("Where is ZQ-9?", 3)[0]["doc_id"] == "late"


# -- fusion ------------------------------------------------------------------------------


def test_rrf_by_hand():
    fused = rrf([10, 20, 30], [30, 40], k=60)
    assert [f.id for f in fused] == [30, 10, 20, 40]  # 20 and 40 tie: the dense rank wins
    assert fused[0].fused_score == pytest.approx(1 / 63 + 1 / 61)
    assert (fused[0].dense_rank, fused[0].lexical_rank) == (3, 1)
    assert (fused[3].dense_rank, fused[3].lexical_rank) == (None, 2)
    weighted = rrf([10, 20, 30], [30, 40], k=1, lexical_weight=3.0)
    assert [f.id for f in weighted] == [30, 40, 10, 20]  # 3/2+1/4, 3/3, 1/2, 1/3


def test_rare_code_found_by_hybrid_though_dense_ranks_it_low(registry, embedder):
    kb = registry.create("kb", IndexSpec(type="flat", search=SearchSettings(mode="dense")))
    fill(kb)
    dense = kb.search(QUERY, 3)
    assert "target" not in [h["doc_id"] for h in dense]
    assert all(set(h) & {"fused_score", "lexical_rank", "dense_rank"} == set() for h in dense)

    kb.spec = kb.spec.model_copy(update={"search": HYBRID})
    hits = kb.search(QUERY, 3)
    assert hits[0]["doc_id"] == "target"
    assert (hits[0]["dense_rank"], hits[0]["lexical_rank"]) == (13, 1)
    assert hits[0]["fused_score"] == pytest.approx(1 / 73 + 1 / 61)
    assert hits[0]["score"] == pytest.approx(0.2, abs=1e-5)  # cosine, not a fused number
    assert [h["doc_id"] for h in hits[1:]] == ["decoy0", "decoy1"]
    # The route keeps the retriever's top k (target included), most similar first, and
    # still drops low cosine scores.
    kept = rag.usable_hits(hits, RetrievalSettings(index="kb", min_score=0.1))
    assert {h["doc_id"] for h in kept} == {"target", "decoy0", "decoy1"}
    assert [h["score"] for h in kept] == sorted((h["score"] for h in hits), reverse=True)
    assert "target" not in [h["doc_id"] for h in rag.usable_hits(hits, RetrievalSettings(
        index="kb", min_score=0.5))]


def test_fused_order_and_scores_match_a_hand_computation(registry, embedder):
    texts = {"z3": "zephyr zephyr zephyr gale", "z2": "zephyr zephyr calm sea",
             "z1": "zephyr calm sea wide", "n1": "breeze over the calm sea",
             "n2": "storm over the open sea"}
    cosines = {"n1": 0.8, "n2": 0.7, "z1": 0.6, "z2": 0.5, "z3": 0.4}
    query = "zephyr"
    embedder.table[query] = unit(np.eye(DIM)[0])
    for j, (doc_id, c) in enumerate(cosines.items()):
        embedder.table[texts[doc_id]] = at_cosine(c, 1 + j)
    kb = registry.create("kb", IndexSpec(type="flat", search=SearchSettings(mode="hybrid", rrf_k=10)))
    kb.add_documents([Document(doc_id=d, text=t, format="text") for d, t in texts.items()])

    ids, vectors = kb.store.embeddings()
    chunk_of = {r["doc_id"]: i for i, r in kb.store.chunk_rows(ids.tolist()).items()}
    lexical = kb.store.lexical_ids(fts_query(query), 20)
    assert lexical == [chunk_of["z3"], chunk_of["z2"], chunk_of["z1"]]  # bm25: more zephyrs
    # dense ranks n1 n2 z1 z2 z3 (1..5), lexical z3 z2 z1 (1..3), k = 10:
    expected = {"n1": 1 / 11, "n2": 1 / 12, "z1": 1 / 13 + 1 / 13, "z2": 1 / 14 + 1 / 12,
                "z3": 1 / 15 + 1 / 11}
    hits = kb.search(query, 5)
    assert [h["doc_id"] for h in hits] == sorted(expected, key=lambda d: -expected[d])
    for h in hits:
        assert h["fused_score"] == pytest.approx(expected[h["doc_id"]])
    stored = dict(zip(ids.tolist(), vectors @ embedder.table[query]))
    for h in hits:  # every score is the cosine of the stored embedding and the query
        assert h["score"] == pytest.approx(float(stored[chunk_of[h["doc_id"]]]), abs=1e-5)


def test_lexical_only_hits_get_their_cosine(registry, embedder):
    kb = registry.create("kb", IndexSpec(type="flat", search=SearchSettings(mode="hybrid", candidates=3)))
    fill(kb)  # the target is outside the 3 dense candidates: lexical only
    hit = next(h for h in kb.search(QUERY, 4) if h["doc_id"] == "target")
    assert hit["dense_rank"] is None and hit["lexical_rank"] == 1
    assert hit["score"] == pytest.approx(0.2, abs=1e-5)


def test_filters_apply_to_the_lexical_side(registry):
    kb = registry.create("kb", IndexSpec(type="hnsw", search=HYBRID))
    fill(kb)
    assert "target" not in [h["doc_id"] for h in kb.search(QUERY, 5, {"team": "b"})]
    hits = kb.search(QUERY, 5, {"team": "a"})
    assert [h["doc_id"] for h in hits] == ["target"] and hits[0]["lexical_rank"] == 1
    assert kb.search(QUERY, 5, {"doc_id": {"$in": ["decoy3"]}})[0]["lexical_rank"] is None


def test_dense_mode_asks_faiss_for_top_k_only(registry, embedder):
    kb = registry.create("kb", IndexSpec(type="flat", search=SearchSettings(mode="dense")))
    fill(kb)
    asked = []
    real = kb.index.search
    kb.index.search = lambda v, k, allowed=None: asked.append(k) or real(v, k, allowed)
    kb.store.lexical_ids = None  # never called in dense mode
    kb.search(QUERY, 3)
    del kb.store.lexical_ids
    kb.spec = kb.spec.model_copy(update={"search": SearchSettings(mode="hybrid")})
    kb.search(QUERY, 3)
    assert asked == [3, 20]


def test_replica_never_returns_what_another_deleted(tmp_path, embedder):
    a = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    b = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    fill(a.create("kb", IndexSpec(type="hnsw", search=HYBRID)))
    assert b.get("kb").search(QUERY, 3)[0]["doc_id"] == "target"
    a.get("kb").delete_document("target")
    assert "target" not in [h["doc_id"] for h in b.get("kb").search(QUERY, 20)]


# -- settings ----------------------------------------------------------------------------


def saved_search(tmp_path):
    return json.loads((tmp_path / "indexes" / "kb" / "index.json").read_text())["spec"]["search"]


def test_new_index_stores_its_mode_and_old_index_stays_dense(tmp_path, embedder):
    reg = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    reg.create("kb", IndexSpec())
    assert saved_search(tmp_path)["mode"] == "dense"  # explicit: a later default changes nothing
    reg.create("kb2", IndexSpec(search=HYBRID))
    assert json.loads((tmp_path / "indexes" / "kb2" / "index.json").read_text()
                      )["spec"]["search"]["mode"] == "hybrid"
    spec_file = tmp_path / "indexes" / "kb" / "index.json"
    saved = json.loads(spec_file.read_text())
    del saved["spec"]["search"]  # as written before search settings existed
    spec_file.write_text(json.dumps(saved))
    reg.close()
    old = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    assert old.get("kb").spec.search.mode == "dense"
    assert old.ensure("kb", IndexSpec()).spec.search.mode == "dense"  # config sets nothing
    old.close()


def test_config_search_settings_apply_to_an_existing_index(tmp_path, embedder):
    reg = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    reg.ensure("kb", IndexSpec(search=SearchSettings(mode="dense")))
    assert saved_search(tmp_path)["mode"] == "dense"
    uid = json.loads((tmp_path / "indexes" / "kb" / "index.json").read_text())["uid"]
    reg.close()
    again = IndexRegistry(tmp_path, embedder_factory=lambda n: embedder)
    kb = again.ensure("kb", IndexSpec(search=SearchSettings(rrf_k=30)))
    assert kb.spec.search == SearchSettings(rrf_k=30) and saved_search(tmp_path)["rrf_k"] == 30
    assert json.loads((tmp_path / "indexes" / "kb" / "index.json").read_text())["uid"] == uid
    again.close()


def test_default_config_sets_helix_search_explicitly():
    from serving.config import load_config

    # explicit, so an existing helix index follows the config
    assert load_config().indexes["helix"].search.mode == "dense"


def test_search_settings_reject_unknown_keys():
    with pytest.raises(ValueError):
        SearchSettings.model_validate({"mode": "hybrid", "rrf": 10})
    with pytest.raises(ValueError):
        SearchSettings(mode="sparse")
    assert SearchSettings().candidate_count(3) == 20
    assert SearchSettings().candidate_count(10) == 40
    assert SearchSettings(candidates=2).candidate_count(5) == 5
