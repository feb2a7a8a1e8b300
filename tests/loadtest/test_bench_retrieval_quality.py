"""The real-text retrieval benchmark: its metrics on known rankings, its question rules on
small stand-ins for the Debian packages' files, and one whole run on a tiny corpus."""

import json
import math

import numpy as np
import pytest

from loadtest import bench_retrieval_quality as bench
from loadtest import realtext
from loadtest import retrieval_quality_report as report
from loadtest.embedding_cache import CachedEmbedder, VectorCache


def test_gold_first_scores_one():
    m = bench.rank_metrics(["a", "b", "c"], {"a"})
    assert m == {"recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0, "mrr@10": 1.0,
                 "ndcg@10": 1.0}


def test_gold_third_after_a_repeated_document():
    m = bench.rank_metrics(["x", "x", "g", "g", "y"], {"g"})
    assert m["recall@1"] == 0.0
    assert m["recall@5"] == 1.0
    assert m["mrr@10"] == pytest.approx(1 / 3)
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(4))  # counted at its first chunk


def test_gold_past_the_depth_scores_nothing():
    ranked = [f"d{i}" for i in range(10)] + ["g"]
    m = bench.rank_metrics(ranked, {"g"})
    assert m == {"recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0, "mrr@10": 0.0,
                 "ndcg@10": 0.0}


def test_two_gold_documents():
    m = bench.rank_metrics(["a", "x", "b"], {"a", "b"})
    assert m["recall@1"] == 0.5
    assert m["recall@5"] == 1.0
    assert m["mrr@10"] == 1.0
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(4)) / ideal)


def test_no_gold_is_an_error():
    with pytest.raises(ValueError):
        bench.rank_metrics(["a"], set())


def test_means_and_paired_counts():
    a = [bench.rank_metrics(r, {"g"}) for r in (["g"], ["g"], ["x"], ["g"])]
    b = [bench.rank_metrics(r, {"g"}) for r in (["x"], ["g"], ["g"], ["x"])]
    assert bench.mean_metrics(a)["recall@5"] == 0.75
    p = bench.paired(a, b)
    assert (p["only_this"], p["only_other"]) == (2, 1)
    assert p["p"] == 1.0  # 2 against 1 is luck


def test_fixed_windows_overlap_and_cover_the_text():
    text = "".join(chr(97 + i % 26) for i in range(2000))
    windows = bench.fixed_windows(text, 800, 120)
    assert [len(w) for w in windows] == [800, 800, 640]
    assert windows[1][:120] == windows[0][-120:]
    assert windows[-1].endswith(text[-50:])
    assert bench.fixed_windows("short", 800, 120) == ["short"]


def test_settings_change_one_thing_from_the_default():
    from retrieval.spec import IndexSpec

    grid = bench.settings_grid()
    assert grid[0].name == "default" and grid[0].index_spec() == IndexSpec.model_validate(
        {**IndexSpec().model_dump(), "search": IndexSpec().search_settings().model_dump()})
    names = [s.name for s in grid]
    assert len(names) == len(set(names))
    default = grid[0].index_spec().model_dump()
    for s in grid[1:]:
        changed = {k for k, v in s.index_spec().model_dump().items() if v != default[k]}
        assert len(changed) == 1 or changed == {"embedder", "search"}, (s.name, changed)
    # search-only changes share the default's built index
    assert grid[1].build_key() == grid[0].build_key()


def test_debian_faq_rule(doc_root):
    s = realtext.debian_faq(doc_root)
    assert [q.query for q in s.questions] == ["What is Debian?"]  # 1.2's body is too short
    gold = {d["doc_id"]: d for d in s.documents}[s.questions[0].gold[0]]
    assert gold["text"].startswith("Debian is a free") and "What is Debian" not in gold["text"]
    assert s.packages == {"debian-faq": "1.0-test", "debian-reference-en": "1.0-test"}
    sources = {d["metadata"]["source"] for d in s.documents}
    assert sources == {"basic.en.html", "ch01.en.html"}  # reference sections: distractors
    assert not any("Why use it" in q.query for q in s.questions)


def test_git_rule(doc_root):
    s = realtext.git_docs(doc_root)
    assert [(q.query, q.gold) for q in s.questions] == [
        ("Add file contents to the index", ["git-add"]), ("Remove files", ["git-rm"])]
    docs = {d["doc_id"]: d["text"] for d in s.documents}
    assert "cmds-main" not in docs
    assert "NAME" not in docs["git-add"] and "Add file contents" not in docs["git-add"]
    assert "SYNOPSIS" in docs["git-add"]


def test_postgresql_rule(doc_root):
    s = realtext.postgresql_reference(doc_root)
    assert [(q.query, q.gold) for q in s.questions] == [("define a new table",
                                                         ["sql-createtable"])]
    assert [d["doc_id"] for d in s.documents] == ["sql-createtable"]
    assert "define a new" not in s.documents[0]["text"]
    assert s.documents[0]["format"] == "html"


def test_missing_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(realtext, "package_version", lambda p: "1")
    with pytest.raises(realtext.MissingPackage, match="apt-get install git-doc"):
        realtext.git_docs(tmp_path)


def test_vector_cache_round_trip(tmp_path):
    cache = VectorCache(tmp_path / "m.npz")
    cache.put(cache.key("m", "a"), np.ones(3, dtype=np.float32))
    cache.save()
    again = VectorCache(tmp_path / "m.npz")
    assert np.array_equal(again.get(cache.key("m", "a")), np.ones(3))
    assert again.get(cache.key("m", "b")) is None


def test_whole_run_on_a_tiny_corpus(tmp_path, monkeypatch):
    """Baseline and lorag settings through the real embedder and index code: each
    question is worded after its gold document only, so every setting finds it first."""
    from retrieval.embedder import Embedder

    topics = {"lighthouse": "The lighthouse keeper climbs 120 steps to light the lamp "
                            "at dusk and records the passing ships in a logbook.",
              "bakery": "The bakery opens at five; sourdough loaves rest overnight and "
                        "are baked in a wood-fired oven before the first customers arrive.",
              "glacier": "The glacier retreats a few metres each summer, leaving "
                         "moraines of gravel and boulders across the valley floor."}
    doc_set = realtext.DocumentSet("tiny", {"none": "0"}, "test")
    for name, text in topics.items():
        doc_set.documents.append({"doc_id": name, "text": f"# {name.title()}\n\n{text}",
                                  "format": "markdown"})
    doc_set.questions = [
        realtext.Question("q1", "Who lights the lamp and logs the ships?", ["lighthouse"]),
        realtext.Question("q2", "When is the sourdough baked?", ["bakery"]),
        realtext.Question("q3", "Why is there gravel across the valley floor?", ["glacier"])]
    grid = [s for s in bench.settings_grid() if s.name in ("default", "dense", "hybrid")]
    embedder = CachedEmbedder(Embedder("builtin:all-minilm-l6-v2"))
    raw = CachedEmbedder(bench.RawModel())
    out = bench.bench_set(doc_set, grid, {"builtin:all-minilm-l6-v2": embedder}, raw,
                          None, 0, tmp_path, log=lambda *a: None)
    assert out["baseline"]["metrics"]["recall@1"] == 1.0
    assert out["baseline"]["chunks"] == 3
    for name, r in out["settings"].items():
        assert r["metrics"]["mrr@10"] == 1.0, name
        assert r["index"]["chunks"] == 3
    cost = bench.encode_cost({"builtin:all-minilm-l6-v2": embedder}, list(topics.values()))
    assert cost["builtin:all-minilm-l6-v2"]["dim"] == 384
    assert cost["builtin:all-minilm-l6-v2"]["ms_per_chunk"] > 0
    result = {"command": "test", "sets": [out], "average": report.averages([out]),
              "encode_cost": cost}
    md = report.markdown_report(result)
    assert "| baseline (MiniLM" in md and "| default |" in md
    assert "| builtin:all-minilm-l6-v2 |" in md
    report.plot(result, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
    json.dumps(result)


def test_rerank_order_sorts_by_score_and_reuses_cached_scores(tmp_path):
    class Fake:
        calls = 0

        def score(self, query, texts):
            Fake.calls += 1
            return [len(t) for t in texts]  # longest text first

    hits = [{"doc_id": "a", "text": "xx"}, {"doc_id": "b", "text": "xxxx"},
            {"doc_id": "c", "text": "x"}]
    cache = VectorCache(tmp_path / "r.npz")
    order, seconds = bench.rerank_order(Fake(), "q", hits, cache)
    assert order == ["b", "a", "c"] and seconds is not None
    order, seconds = bench.rerank_order(Fake(), "q", hits, cache)
    assert order == ["b", "a", "c"] and seconds is None and Fake.calls == 1
