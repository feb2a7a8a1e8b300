"""What retrieval adds to time to first token: the `rag` route against `base`, same prompt.

    python -m loadtest.bench_rag_overhead [--chunks 100000] [--passes 2] [--out results/...]

Builds an index of `--chunks` chunks in a data dir of its own (the sample
knowledge base, embedded for real, plus filler chunks whose vectors are random
unit vectors: search cost does not depend on what the vectors mean, and
embedding 100k real chunks would take half an hour on this CPU), starts lorag
with two routes on it, `rag` (retrieval, top_k 4) and `base`, and for every
sample question sends:

- to `rag`: the question (the server embeds it, searches, builds the prompt);
- to `base`: the final conversation the rag route built, rebuilt here with the
  same code (`serving.rag.prepare_messages`, same tokenizer, same hits); equal
  `usage.prompt_tokens` on both answers confirms the prompts match.

Streaming, one request at a time, 2 output tokens, order alternating per
question, prefix caching off (so neither route reuses the other's prefill).
TTFT = time to the first content token. Reports the median TTFT of each route
and their difference (goal: at most 15 ms), the server's own timers (the
retriever call, prompt building), and the floor: the same work timed in this
process with one thread before the server starts (`measure_floor`). Writes a
JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from serving.local_server import running
from serving.config import DEFAULT_CONFIG_PATH, dump_config, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "evaluation" / "samples" / "helix"
INDEX = "bench"
GOAL_MS = 15


class FillerEmbedder:
    """The real embedder for real text; random unit vectors for filler chunks."""

    def __init__(self, real):
        self.real, self.dim = real, real.dim
        self.rng = np.random.default_rng(0)

    def encode(self, texts: list[str]) -> np.ndarray:
        if texts and all(t.startswith("filler ") for t in texts):
            x = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
            return x / np.linalg.norm(x, axis=1, keepdims=True)
        return self.real.encode(texts)

    def encode_query(self, texts: list[str]) -> np.ndarray:
        return self.real.encode_query(texts)

    def count_tokens(self, text: str) -> int:
        return self.real.count_tokens(text)


def build_index(data_dir: Path, spec, chunks: int) -> dict:
    from retrieval.embedder import Embedder
    from retrieval.files import load_documents
    from retrieval.knowledge_base import Document, KnowledgeBase
    from retrieval.registry import IndexRegistry

    started = time.perf_counter()
    registry = IndexRegistry(data_dir)
    registry.create(INDEX, spec).close()  # writes index.json; reopened with the filler embedder
    kb = KnowledgeBase(INDEX, registry.root / INDEX, spec, FillerEmbedder(Embedder(spec.embedder)))
    kb.add_documents([Document.model_validate(d) for d in load_documents([SAMPLE / "docs"])])
    real = kb.stats()["chunks"]
    batch = 2000
    for i in range(0, max(0, chunks - real), batch):
        n = min(batch, chunks - real - i)
        kb.add_documents([Document(doc_id=f"filler-{i + j}", format="text",
                                   text=f"filler record {i + j}: archived note.")
                          for j in range(n)])
        print(f"\r  index: {real + i + n}/{chunks} chunks", end="", flush=True)
    kb.snapshot()
    stats = kb.stats()
    kb.close()
    registry.close()
    print(f"\n  index built in {time.perf_counter() - started:.0f}s: {stats}", flush=True)
    return stats


def reuse_index(data_dir: Path, spec, chunks: int) -> dict | None:
    """The stats of an index built earlier in `data_dir` with this spec and size, if any."""
    from retrieval.registry import IndexRegistry

    if not (data_dir / "indexes" / INDEX / "index.json").exists():
        return None
    registry = IndexRegistry(data_dir)
    try:
        kb = registry.get(INDEX)
        stats = kb.stats()
        if kb.spec != spec or stats["chunks"] != chunks:
            raise SystemExit(f"{data_dir} holds a different bench index ({stats}); "
                             "remove it or pick another --data-dir")
        print(f"  reusing the index in {data_dir}: {stats}", flush=True)
        return stats
    finally:
        registry.close()


def measure_floor(data_dir: Path, cfg, questions: list[str], tokenizer,
                  max_model_len: int) -> dict:
    """What the rag route's own work costs, timed in this process on the idle machine, one
    thread (as in the retriever replica, where Ray sets OMP_NUM_THREADS=1), no Ray call, no
    HTTP: embedding the query, searching the index (FAISS and the SQLite rows), and fitting
    the sources into the prompt with the model's tokenizer. No server can add less than
    their sum for a query it has not seen; medians over the sample questions (ms)."""
    import functools

    import faiss

    from retrieval.embedder import Embedder
    from retrieval.registry import IndexRegistry
    from serving import rag

    route = cfg.route("rag")
    settings = route.retrieval
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    registry = IndexRegistry(data_dir, embedder_factory=functools.partial(
        Embedder, query_encoder=cfg.retrieval.query_encoder))
    try:
        kb = registry.get(INDEX)
        times: dict[str, list[float]] = {"embed": [], "search": [], "prompt": []}
        for _ in range(2):  # the first pass warms caches; the second is timed
            for key in times:
                times[key].clear()
            for q in questions:
                t0 = time.perf_counter()
                kb.embedder.encode_query([q])
                t1 = time.perf_counter()
                hits = kb.search(q, settings.top_k, None, settings.exclude_status)  # embeds the query, as the server
                t2 = time.perf_counter()
                rag.prepare_messages(tokenizer, route.template,
                                     [{"role": "user", "content": q}],
                                     rag.usable_hits(hits, settings),
                                     max_context_tokens=settings.max_context_tokens,
                                     max_model_len=max_model_len, answer_tokens=2)
                t3 = time.perf_counter()
                times["embed"].append((t1 - t0) * 1000)
                times["search"].append((t2 - t1) * 1000)
                times["prompt"].append((t3 - t2) * 1000)
    finally:
        registry.close()
        faiss.omp_set_num_threads(threads)
    floor = {f"{k}_ms": statistics.median(v) for k, v in times.items()}
    # search_ms holds a query embedding of its own (embed_ms times one alone): the floor
    # is the search and the prompt building, as the route runs them.
    floor["total_ms"] = floor["search_ms"] + floor["prompt_ms"]
    print(f"  floor (this process, one thread, no Ray, no HTTP): search "
          f"{floor['search_ms']:.1f} ms (of which query embedding ~{floor['embed_ms']:.1f} ms)"
          f" + prompt building {floor['prompt_ms']:.1f} ms = {floor['total_ms']:.1f} ms",
          flush=True)
    return floor


def stream_ttft(http: httpx.Client, model: str, messages: list[dict]) -> tuple[float, int]:
    """Seconds to the first content token, and the prompt's token count."""
    body = {"model": model, "messages": messages, "stream": True, "max_tokens": 2,
            "temperature": 0, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    ttft, prompt_tokens = None, -1
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[len("data: "):])
            if ttft is None and any((c.get("delta") or {}).get("content")
                                    for c in event.get("choices") or []):
                ttft = time.perf_counter() - started
            if event.get("usage"):
                prompt_tokens = event["usage"]["prompt_tokens"]
    if ttft is None:
        raise RuntimeError(f"{model}: no content token in the stream")
    return ttft, prompt_tokens


def server_histogram(http: httpx.Client, family: str) -> dict:
    """Count and sum (seconds) of one of the server's histograms."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for fam in text_string_to_metric_families(http.get("/metrics").text):
        if fam.name == family:
            for s in fam.samples:
                if s.name.endswith("_sum") or s.name.endswith("_count"):
                    out[s.name.rsplit("_", 1)[1]] = s.value
    return out


def since(before: dict, after: dict) -> dict:
    """A histogram's count, sum and mean (ms) between two readings."""
    out = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in ("count", "sum")}
    if out["count"]:
        out["mean_ms"] = 1000 * out["sum"] / out["count"]
    return out


def median_ci95(values: list[float], resamples: int = 4000, seed: int = 0,
                statistic=np.median) -> tuple[float, float]:
    """95% bootstrap interval of the median (or of `statistic`, e.g. np.mean): how far
    the noise of this machine leaves the figure from the truth (TTFT spreads by hundreds
    of ms; the goal is 15 ms)."""
    arr = np.asarray(values, dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(arr), (resamples, len(arr)))
    stats = statistic(arr[picks], axis=1)
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def verdict(ci: tuple[float, float], goal_ms: float) -> str:
    if ci[1] <= goal_ms:
        return "met"
    if ci[0] > goal_ms:
        return "not met"
    return "undecided: the goal is inside the 95% interval"


def bench_config(index_type: str = "hnsw", search_mode: str | None = None):
    """The default config's model and rag route over the bench index (no answer-side
    extras: every hit is used, no markers added), plus a plain `base` route; prefix
    caching off, so neither route reuses the other's prefill."""
    default = load_config(DEFAULT_CONFIG_PATH)
    rag_default = default.route("rag")
    model = default.models[rag_default.model]
    engine = model.engine.model_copy(update={"extra_args": {
        **model.engine.extra_args, "enable-prefix-caching": False}})
    retrieval = rag_default.retrieval.model_copy(update={
        "index": INDEX, "min_score": -1.0, "add_markers": False})
    helix = default.indexes["helix"].spec().model_dump(mode="json")
    if search_mode:
        helix["search"] = {**(helix.get("search") or {}), "mode": search_mode}
    return parse_config({
        "server": default.server.model_dump(mode="json"),
        "models": {rag_default.model: {**model.model_dump(mode="json"),
                                       "engine": engine.model_dump(mode="json")}},
        "indexes": {INDEX: {**helix, "type": index_type}},
        "routes": [{"name": "base", "model": rag_default.model},
                   {"name": "rag", "model": rag_default.model,
                    "retrieval": retrieval.model_dump(mode="json")}],
    })


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=100_000, help="chunks in the index")
    p.add_argument("--type", default="hnsw", choices=["flat", "hnsw"], help="FAISS index type")
    p.add_argument("--search-mode", choices=["dense", "hybrid"], default=None,
                   help="search mode of the index (default: the helix index's in the config)")
    p.add_argument("--passes", type=int, default=2, help="times every question is asked")
    p.add_argument("--port", type=int, default=8014)
    p.add_argument("--startup-timeout-s", type=float, default=900)
    p.add_argument("--out", type=Path, default=Path("results/bench_rag_overhead.json"))
    p.add_argument("--data-dir", type=Path, default=None,
                   help="keep the built index here and reuse it on later runs (default: a "
                   "temporary directory, rebuilt every run)")
    opts = p.parse_args(argv)
    opts.out.parent.mkdir(parents=True, exist_ok=True)

    from vllm.tokenizers import get_tokenizer

    from lorag_core.model_source import resolve_model_source
    from serving import rag

    cfg = bench_config(opts.type, opts.search_mode)
    route = cfg.route("rag")
    model, retrieval = cfg.models[route.model], route.retrieval
    questions = [json.loads(line)["question"]
                 for line in (SAMPLE / "questions.jsonl").read_text().splitlines() if line]
    tokenizer = get_tokenizer(resolve_model_source(model.source))
    url = f"http://127.0.0.1:{opts.port}"
    samples = {"rag": [], "base": []}
    mismatched = 0
    with tempfile.TemporaryDirectory(prefix="lorag-bench-rag-") as tmp:
        work = Path(tmp)
        data_dir = opts.data_dir or work / "data"
        stats = reuse_index(data_dir, cfg.indexes[INDEX].spec(), opts.chunks)
        if stats is None:
            stats = build_index(data_dir, cfg.indexes[INDEX].spec(), opts.chunks)
        floor = measure_floor(data_dir, cfg, questions, tokenizer, model.engine.max_model_len)
        config = dump_config(cfg, work / "config.yaml")
        cmd = [sys.executable, "-m", "serving.cli", "serve", "--config", str(config),
               "--host", "127.0.0.1", "--port", str(opts.port)]
        env = {**os.environ, "LORAG_DATA_DIR": str(data_dir)}
        with running(cmd, url, opts.out.parent / "bench_rag_overhead-server.log",
                     opts.startup_timeout_s, env=env), \
                httpx.Client(base_url=url, timeout=600) as http:
            prompts = []
            for q in questions:  # the final conversation the rag route will build
                hits = http.post(f"/v1/indexes/{INDEX}/search", json={
                    "query": q, "top_k": retrieval.top_k}).json()["data"]
                final, _ = rag.prepare_messages(
                    tokenizer, route.template, [{"role": "user", "content": q}],
                    rag.usable_hits(hits, retrieval),
                    max_context_tokens=retrieval.max_context_tokens,
                    max_model_len=model.engine.max_model_len, answer_tokens=2)
                prompts.append(final)
            for q, final in zip(questions[:3], prompts[:3], strict=True):  # warm-up
                stream_ttft(http, "rag", [{"role": "user", "content": q}])
                stream_ttft(http, "base", final)
            # The server's timers count from here: not the warm-up's first, slow calls.
            start_retrieval = server_histogram(http, "lorag_retrieval_duration_seconds")
            start_prompt = server_histogram(http, "lorag_route_prompt_duration_seconds")
            for p_i in range(opts.passes):
                for i, (q, final) in enumerate(zip(questions, prompts, strict=True)):
                    order = ["rag", "base"] if (i + p_i) % 2 == 0 else ["base", "rag"]
                    tokens = {}
                    for name in order:
                        msgs = [{"role": "user", "content": q}] if name == "rag" else final
                        ttft, tokens[name] = stream_ttft(http, name, msgs)
                        samples[name].append(ttft * 1000)
                    mismatched += tokens["rag"] != tokens["base"]
                print(f"  pass {p_i + 1}/{opts.passes}: median TTFT rag "
                      f"{statistics.median(samples['rag']):.1f} ms, base "
                      f"{statistics.median(samples['base']):.1f} ms", flush=True)
            server_retrieval = since(start_retrieval, server_histogram(
                http, "lorag_retrieval_duration_seconds"))
            server_prompt = since(start_prompt, server_histogram(
                http, "lorag_route_prompt_duration_seconds"))
    medians = {k: statistics.median(v) for k, v in samples.items()}
    diffs = [r - b for r, b in zip(samples["rag"], samples["base"], strict=True)]
    ci = median_ci95(diffs)
    report = {
        "index": {"chunks": stats["chunks"], "documents": stats["documents"],
                  "type": opts.type, "top_k": retrieval.top_k,
                  "ef_search": cfg.indexes[INDEX].ef_search,
                  "search": cfg.indexes[INDEX].spec().search_settings().model_dump(),
                  "query_encoder": cfg.retrieval.query_encoder},
        "requests_per_route": len(samples["rag"]),
        "prompt_token_mismatches": mismatched,
        "median_ttft_ms": medians,
        "median_ttft_difference_ms": medians["rag"] - medians["base"],
        "median_paired_difference_ms": statistics.median(diffs),
        "paired_difference_ci95_ms": ci,
        "goal_ms": GOAL_MS,
        "goal": verdict(ci, GOAL_MS),
        # What the server itself times over the measured requests: the ingress's
        # retriever call (embedding, search, the Ray call) and the LLM replica's prompt
        # building (fitting the sources with the tokenizer).
        "server_retrieval": server_retrieval,
        "server_route_prompt": server_prompt,
        "server_side_overhead_ms": server_retrieval.get("mean_ms", float("nan"))
        + server_prompt.get("mean_ms", float("nan")),
        # The same work in one process on the idle machine (measure_floor): what is left
        # when every hop between processes is gone.
        "floor_in_process": floor,
        "samples_ms": samples,
    }
    opts.out.write_text(json.dumps(report, indent=2))
    print(f"\nindex {stats['chunks']} chunks ({opts.type}); median TTFT rag "
          f"{medians['rag']:.1f} ms, base {medians['base']:.1f} ms: retrieval adds "
          f"{report['median_ttft_difference_ms']:.1f} ms (paired median "
          f"{report['median_paired_difference_ms']:.1f} ms, 95% interval {ci[0]:.1f} to "
          f"{ci[1]:.1f} ms; goal <= {GOAL_MS} ms: {report['goal']}); server-side "
          f"retrieval mean {server_retrieval.get('mean_ms', float('nan')):.1f} ms + prompt "
          f"building {server_prompt.get('mean_ms', float('nan')):.1f} ms; in-process floor "
          f"{floor['total_ms']:.1f} ms; "
          f"prompt mismatches {mismatched} -> {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
