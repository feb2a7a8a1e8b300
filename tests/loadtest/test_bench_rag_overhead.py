"""The retrieval-overhead benchmark: its statistics, and its in-process floor on a small index
(the TTFT comparison itself needs a server)."""

import numpy as np

from loadtest.bench_rag_overhead import median_ci95, since, verdict


def test_interval_holds_the_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(1)
    few = list(rng.normal(20, 50, 30))
    many = list(rng.normal(20, 50, 3000))
    lo_few, hi_few = median_ci95(few)
    lo_many, hi_many = median_ci95(many)
    assert lo_few <= float(np.median(few)) <= hi_few
    assert lo_many <= 20 <= hi_many
    assert hi_many - lo_many < (hi_few - lo_few) / 4


def test_constant_differences_have_no_spread():
    assert median_ci95([12.0] * 50) == (12.0, 12.0)


def test_verdict():
    assert verdict((3.0, 14.0), 15) == "met"
    assert verdict((16.0, 40.0), 15) == "not met"
    assert verdict((10.0, 30.0), 15).startswith("undecided")


def test_server_timers_count_only_the_measured_requests():
    before = {"count": 5.0, "sum": 1.0}       # warm-up: slow first calls
    after = {"count": 105.0, "sum": 2.0}
    assert since(before, after) == {"count": 100.0, "sum": 1.0, "mean_ms": 10.0}
    assert since({}, {"count": 0.0, "sum": 0.0}) == {"count": 0.0, "sum": 0.0}


def test_floor_times_the_rag_routes_own_work_in_process(tmp_path):
    """The floor is the route's real work on a real (small) index: query embedding,
    search, and fitting the hits into the prompt with the model's tokenizer."""
    from vllm.tokenizers import get_tokenizer

    from loadtest.bench_rag_overhead import INDEX, bench_config, build_index, measure_floor
    from lorag_core.model_source import resolve_model_source

    cfg = bench_config(index_type="flat")
    model = cfg.models[cfg.route("rag").model]
    stats = build_index(tmp_path, cfg.indexes[INDEX].spec(), chunks=200)
    assert stats["chunks"] == 200   # the sample documents' chunks, then filler
    floor = measure_floor(tmp_path, cfg, ["Who chairs the board?", "Where is the seed vault?"],
                          get_tokenizer(resolve_model_source(model.source)),
                          model.engine.max_model_len)
    assert all(floor[k] > 0 for k in ("embed_ms", "search_ms", "prompt_ms"))
    # The search embeds the query itself; the embedding alone is reported, not added.
    assert floor["total_ms"] == floor["search_ms"] + floor["prompt_ms"]
