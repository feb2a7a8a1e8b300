"""Retrieval quality on real public documents: lorag's index settings against a raw baseline.

    python -m loadtest.bench_retrieval_quality [--sets debian-faq,git,postgresql]
        [--settings default,dense,...] [--rerank-questions 40] [--out docs/results/retrieval_quality]

The document sets and their questions come from installed Debian packages by written
rules (loadtest.realtext). For every set, in one run:

- **baseline**: what a user would build by hand: sentence-transformers
  all-MiniLM-L6-v2 and a FAISS IndexFlatIP over fixed 800-character windows with 120
  characters of overlap of each document's text;
- **each setting**: a lorag index (retrieval.registry.IndexRegistry and
  KnowledgeBase, the code the retriever replicas run) built with the default IndexSpec
  changed in one respect (search mode and fusion weights, chunk unit/size/overlap,
  embed_headings, lifecycle detection, embedder), searched as a route searches
  (exclude_status draft and superseded); the reranker (the route's query-likelihood
  reranking, SmolLM2-135M) reorders the default index's top 10 for the first
  --rerank-questions questions (about 6 s a question on this CPU).

Metrics over the ranked chunks of each question's top 10 (a document counts once, at its
first chunk; see `rank_metrics`): recall@1/5/10, MRR@10, nDCG@10, each setting against
the baseline question by question (exact McNemar test on recall@5 hits). Also the
encode cost (chunks/s), the chunks and the vector bytes of each index.

Writes bench_retrieval_quality.json, .md and .png under --out.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loadtest.embedding_cache import CachedEmbedder, VectorCache
from loadtest.retrieval_quality_report import averages, markdown_report, write

KS = (1, 5, 10)
DEPTH = 10  # chunks ranked per question
ROUTE_EXCLUDE = ["draft", "superseded"]  # routes[].retrieval.exclude_status's default
BASELINE_EMBEDDER = "builtin:all-minilm-l6-v2"
BASELINE_SIZE, BASELINE_OVERLAP = 800, 120
DEFAULT_RERANKER = "builtin:smollm2-135m-instruct"


def rank_metrics(ranked: list[str], gold: set[str], ks: tuple[int, ...] = KS,
                 depth: int = DEPTH) -> dict[str, float]:
    """Metrics of one question. `ranked`: the document id of each returned chunk, best
    first (a document may repeat); `gold`: the relevant documents.

    recall@k: the share of gold documents with a chunk among the first k chunks.
    MRR@depth: 1 / position of the first gold chunk (0 past depth).
    nDCG@depth: binary gains, each gold document counted at its first chunk only
    (later chunks of it repeat what was found), over the ideal of all gold documents
    ranked first.
    """
    if not gold:
        raise ValueError("a question needs at least one gold document")
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = len(gold & set(ranked[:k])) / len(gold)
    first = next((i for i, d in enumerate(ranked[:depth], 1) if d in gold), None)
    out[f"mrr@{depth}"] = 1.0 / first if first else 0.0
    seen: set[str] = set()
    dcg = 0.0
    for i, d in enumerate(ranked[:depth], 1):
        if d in gold and d not in seen:
            seen.add(d)
            dcg += 1.0 / math.log2(i + 1)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), depth) + 1))
    out[f"ndcg@{depth}"] = dcg / ideal
    return out


def mean_metrics(per_question: list[dict[str, float]]) -> dict[str, float]:
    keys = per_question[0].keys() if per_question else []
    return {k: round(float(np.mean([m[k] for m in per_question])), 4) for k in keys}


def paired(a: list[dict[str, float]], b: list[dict[str, float]], key: str = "recall@5"
           ) -> dict[str, Any]:
    """Questions only `a` finds (metric 1 vs below 1), only `b` finds, and the exact
    McNemar p-value: is the difference more than luck?"""
    from evaluation.stats import mcnemar

    only_a = sum(1 for x, y in zip(a, b, strict=True) if x[key] >= 1 > y[key])
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y[key] >= 1 > x[key])
    return {"metric": key, "only_this": only_a, "only_other": only_b,
            "p": mcnemar(only_a, only_b)}


def fixed_windows(text: str, size: int = BASELINE_SIZE, overlap: int = BASELINE_OVERLAP
                  ) -> list[str]:
    """Windows of `size` characters, each starting `size - overlap` after the last; the
    last window ends the text. Blank windows are dropped."""
    step = size - overlap
    starts = range(0, max(len(text) - overlap, 1), step)
    return [w for w in (text[s:s + size] for s in starts) if w.strip()]


def document_text(doc: dict[str, Any]) -> str:
    """The text a raw pipeline would index: HTML converted as lorag converts it, the rest
    as sent."""
    if doc.get("format") == "html":
        from retrieval.chunker import html_to_markdown

        return html_to_markdown(doc["text"])[0]
    return doc["text"]


@dataclass(frozen=True)
class Setting:
    """One index setting: IndexSpec fields and search settings changed from the defaults."""

    name: str
    spec: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def index_spec(self):
        from retrieval.spec import IndexSpec, SearchSettings

        spec = IndexSpec().model_copy(update=self.spec)
        search = SearchSettings(**{**spec.search_settings().model_dump(), **self.search})
        return IndexSpec.model_validate({**spec.model_dump(), "search": search.model_dump()})

    def build_key(self) -> str:
        """Settings with the same key share one built index (search settings change no
        stored data)."""
        spec = self.index_spec().model_dump(mode="json")
        spec.pop("search")
        return json.dumps(spec, sort_keys=True)


def chunking(unit: str, size: int, overlap: int) -> dict[str, Any]:
    from retrieval.chunker import ChunkingConfig

    return {"chunking": ChunkingConfig(unit=unit, size=size, overlap=overlap)}


def settings_grid() -> list[Setting]:
    """The default index and one change from it at a time."""
    from retrieval.spec import IndexSpec

    default = IndexSpec().search_settings()
    other = "dense" if default.mode == "hybrid" else "hybrid"
    grid = [Setting("default", note="IndexSpec() as a name-only POST /v1/indexes makes it"),
            Setting(other, search={"mode": other})]
    for w in (0.25, 0.5, 2.0):
        grid.append(Setting(f"hybrid lexical weight {w:g}", search={"mode": "hybrid",
                                                                      "lexical_weight": w}))
    grid.append(Setting("hybrid lexical share 0.2", search={"mode": "hybrid",
                                                              "lexical_share": 0.2}))
    heads = IndexSpec().embed_headings is not False
    grid.append(Setting(f"embed_headings {'off' if heads else 'on'}",
                        spec={"embed_headings": not heads}))
    grid.append(Setting(f"lifecycle detection {'off' if IndexSpec().detect_status else 'on'}",
                        spec={"detect_status": not IndexSpec().detect_status}))
    size = IndexSpec().chunking
    for unit, s, o in (("chars", 400, 60), ("chars", 1200, 180), ("chars", 1600, 240),
                       ("chars", size.size, 0), ("tokens", 200, 30)):
        if (unit, s, o) != (size.unit, size.size, size.overlap):
            grid.append(Setting(f"chunks {s} {unit}/{o}", spec=chunking(unit, s, o)))
    for mode in ("dense", "hybrid"):
        grid.append(Setting(f"all-mpnet-base-v2 {mode}",
                            spec={"embedder": "builtin:all-mpnet-base-v2"},
                            search={"mode": mode}))
    return grid


def run_baseline(docs: list[dict[str, Any]], queries: list[str], model: Any
                 ) -> tuple[list[list[str]], dict[str, Any]]:
    """`model`: a CachedEmbedder around the raw SentenceTransformer (see RawModel)."""
    import faiss

    texts, owners = [], []
    for d in docs:
        for w in fixed_windows(document_text(d)):
            texts.append(w)
            owners.append(d["doc_id"])
    encoded, seconds = model.encoded, model.encode_seconds
    vectors = model.encode(texts)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    _, ids = index.search(model.encode_query(queries), DEPTH)
    ranked = [[owners[i] for i in row if i >= 0] for row in ids]
    new, encode_s = model.encoded - encoded, model.encode_seconds - seconds
    return ranked, {"chunks": len(texts), "encoded": new, "encode_s": round(encode_s, 1),
                    "chunks_per_s": round(new / encode_s, 1) if new and encode_s else None,
                    "vector_bytes": int(vectors.nbytes)}


class RawModel:
    """The baseline's embedder: SentenceTransformer.encode as a user calls it (batch 64,
    normalized), the same call for documents and queries."""

    def __init__(self, name: str = BASELINE_EMBEDDER):
        from sentence_transformers import SentenceTransformer

        from retrieval.builtin_embedders import resolve_embedder

        self.model = SentenceTransformer(resolve_embedder(name), device="cpu",
                                         local_files_only=True)
        self.name = f"raw:{name}"
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=64, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)

    encode_query = encode


def build_index(registry: Any, name: str, setting: Setting, docs: list[dict[str, Any]],
                embedder: CachedEmbedder) -> tuple[Any, dict[str, Any]]:
    from retrieval.knowledge_base import Document

    kb = registry.create(name, setting.index_spec())
    encoded, seconds = embedder.encoded, embedder.encode_seconds
    start = time.perf_counter()
    for i in range(0, len(docs), 64):
        kb.add_documents([Document(**d) for d in docs[i:i + 64]])
    stats = kb.stats()
    new = embedder.encoded - encoded
    encode_s = embedder.encode_seconds - seconds
    return kb, {"chunks": stats["chunks"], "vector_bytes": stats["chunks"] * embedder.dim * 4,
                "dim": embedder.dim, "build_s": round(time.perf_counter() - start, 1),
                "encoded": new, "encode_s": round(encode_s, 1),
                "chunks_per_s": round(new / encode_s, 1) if new and encode_s else None,
                "excluded_chunks": len(kb.store.status_chunk_ids(ROUTE_EXCLUDE))}


def search_all(kb: Any, setting: Setting, queries: list[str], depth: int = DEPTH
               ) -> tuple[list[list[dict[str, Any]]], float]:
    kb.spec = kb.spec.model_copy(update={"search": setting.index_spec().search})
    start = time.perf_counter()
    hits = [kb.search(q, top_k=depth, exclude_status=ROUTE_EXCLUDE) for q in queries]
    return hits, (time.perf_counter() - start) / max(len(queries), 1)


def evaluate(ranked: list[list[str]], golds: list[set[str]]) -> list[dict[str, float]]:
    return [rank_metrics(r, g) for r, g in zip(ranked, golds, strict=True)]


def rerank_order(reranker: Any, query: str, hits: list[dict[str, Any]],
                 cache: VectorCache | None = None) -> tuple[list[str], float | None]:
    """Doc ids of `hits` ordered by the reranker's score (the route keeps the best), and
    the seconds the scoring took (None when every score came from the cache)."""
    cache = cache or VectorCache(None)
    keys = [cache.key(query, h["text"]) for h in hits]
    seconds = None
    if any(cache.get(k) is None for k in keys):
        start = time.perf_counter()
        scores = reranker.score(query, [h["text"] for h in hits])
        seconds = time.perf_counter() - start
        for k, score in zip(keys, scores, strict=True):
            cache.put(k, np.array([score], dtype=np.float32))
    scores = [float(cache.get(k)[0]) for k in keys]
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [hits[i]["doc_id"] for i in order], seconds


def bench_set(doc_set: Any, grid: list[Setting], embedders: dict[str, Any], baseline_model: Any,
              reranker: Any | None, rerank_questions: int, workdir: Path,
              rerank_cache: VectorCache | None = None, log=print) -> dict[str, Any]:
    from retrieval.registry import IndexRegistry

    queries = [q.query for q in doc_set.questions]
    golds = [set(q.gold) for q in doc_set.questions]
    out: dict[str, Any] = {"set": doc_set.summary(), "settings": {}}
    ranked, info = run_baseline(doc_set.documents, queries, baseline_model)
    baseline_model.cache.save()
    base = evaluate(ranked, golds)
    out["baseline"] = {**info, "metrics": mean_metrics(base)}
    log(f"[{doc_set.name}] baseline {out['baseline']['metrics']} ({info['chunks']} chunks)")
    registry = IndexRegistry(workdir / doc_set.name,
                             embedder_factory=lambda name: embedders[name])
    built: dict[str, tuple[Any, dict[str, Any]]] = {}
    per_setting: dict[str, list[dict[str, float]]] = {}
    default_hits: list[list[dict[str, Any]]] = []
    for setting in grid:
        embedder_name = setting.index_spec().embedder
        if embedder_name not in embedders:
            log(f"[{doc_set.name}] {setting.name}: skipped (embedder {embedder_name} "
                "unavailable)")
            continue
        key = setting.build_key()
        if key not in built:
            built[key] = build_index(registry, f"i{len(built)}", setting,
                                     doc_set.documents, embedders[embedder_name])
            embedders[embedder_name].cache.save()
        kb, index_info = built[key]
        hits, seconds = search_all(kb, setting, queries)
        if setting.name == "default":
            default_hits = hits
        metrics = evaluate([[h["doc_id"] for h in hs] for hs in hits], golds)
        per_setting[setting.name] = metrics
        out["settings"][setting.name] = {
            "spec": setting.index_spec().model_dump(mode="json"), "note": setting.note,
            "index": index_info, "search_ms": round(seconds * 1000, 2),
            "metrics": mean_metrics(metrics), "vs_baseline": paired(metrics, base)}
        log(f"[{doc_set.name}] {setting.name}: {mean_metrics(metrics)}")
    if "default" in per_setting:
        for name, metrics in per_setting.items():
            if name != "default":
                out["settings"][name]["vs_default"] = paired(metrics, per_setting["default"])
    if reranker is not None and default_hits and rerank_questions > 0:
        picked = sorted(random.Random(0).sample(range(len(queries)),
                                                min(rerank_questions, len(queries))))
        runs = [rerank_order(reranker, queries[i], default_hits[i], rerank_cache)
                for i in picked]
        timed = [t for _, t in runs if t is not None]
        seconds = round(float(np.mean(timed)), 2) if timed else None  # None: all cached
        after = evaluate([r for r, _ in runs], [golds[i] for i in picked])
        before = [per_setting["default"][i] for i in picked]
        out["rerank"] = {"questions": len(picked), "candidates": DEPTH,
                         "seconds_per_question": seconds, "questions_timed": len(timed),
                         "default": mean_metrics(before), "reranked": mean_metrics(after),
                         "baseline": mean_metrics([base[i] for i in picked]),
                         "vs_default": paired(after, before),
                         "vs_default_top1": paired(after, before, "recall@1")}
        log(f"[{doc_set.name}] rerank on {len(picked)}: {out['rerank']}")
    out["per_question"] = {"baseline": base, **per_setting}
    registry.close()
    return out


def encode_cost(embedders: dict[str, CachedEmbedder], texts: list[str]) -> dict[str, Any]:
    """Each embedder's cost on the same chunks, uncached, in batches of 64 after one
    warm-up batch: milliseconds a chunk, vector bytes, dimensions."""
    out = {}
    for name, e in embedders.items():
        e.inner.encode(texts[:64])
        start = time.perf_counter()
        e.inner.encode(texts)
        seconds = time.perf_counter() - start
        out[name] = {"ms_per_chunk": round(1000 * seconds / len(texts), 2), "dim": e.dim,
                     "bytes_per_vector": 4 * e.dim, "chunks_timed": len(texts)}
    return out


def load_embedders(grid: list[Setting], cache: Path | None, log=print
                   ) -> dict[str, CachedEmbedder]:
    from retrieval.embedder import Embedder

    out: dict[str, CachedEmbedder] = {}
    for name in dict.fromkeys(s.index_spec().embedder for s in grid):
        try:
            out[name] = CachedEmbedder(Embedder(name), VectorCache.for_model(cache, name))
        except (FileNotFoundError, ValueError, RuntimeError) as err:
            log(f"embedder {name} unavailable: {err}")
    return out


def _default_cache() -> Path:
    from lorag_core.model_source import cache_dir

    return cache_dir() / "bench-retrieval-quality"


def main(argv: list[str] | None = None) -> int:
    from loadtest.realtext import MissingPackage, load_sets

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="debian-faq,git,postgresql")
    parser.add_argument("--settings", default="",
                        help="comma-separated setting names (default: the whole grid); "
                        "the default index always runs")
    parser.add_argument("--skip", default="",
                        help="comma-separated setting names left out")
    parser.add_argument("--rerank-questions", type=int, default=40,
                        help="questions per set reranked (0: no reranker)")
    parser.add_argument("--max-questions", type=int, default=0,
                        help="at most this many questions per set (0: all)")
    parser.add_argument("--out", default="docs/results/retrieval_quality")
    parser.add_argument("--cache", default=str(_default_cache()),
                        help="folder of vectors and rerank scores kept between runs "
                        "('' for none)")
    args = parser.parse_args(argv)
    cache = Path(args.cache) if args.cache else None

    try:
        sets = load_sets(args.sets.split(","))
    except MissingPackage as err:
        print(f"bench_retrieval_quality: {err}", file=sys.stderr)
        return 2
    for s in sets:
        if args.max_questions:
            s.questions = s.questions[:args.max_questions]
    grid = settings_grid()
    if args.settings:
        wanted = args.settings.split(",")
        unknown = set(wanted) - {s.name for s in grid}
        if unknown:
            print(f"unknown settings {sorted(unknown)}; known: "
                  f"{', '.join(s.name for s in grid)}", file=sys.stderr)
            return 2
        grid = [s for s in grid if s.name in wanted or s.name == "default"]
    skipped = set(args.skip.split(",")) if args.skip else set()
    if skipped - {s.name for s in grid}:
        print(f"unknown settings {sorted(skipped - {s.name for s in grid})}", file=sys.stderr)
        return 2
    grid = [s for s in grid if s.name not in skipped or s.name == "default"]
    embedders = load_embedders(grid, cache)
    raw = RawModel()
    baseline_model = CachedEmbedder(raw, VectorCache.for_model(cache, raw.name))
    reranker, rerank_cache = None, VectorCache.for_model(cache, "rerank:" + DEFAULT_RERANKER)
    if args.rerank_questions:
        from retrieval.reranker import QueryLikelihoodReranker

        reranker = QueryLikelihoodReranker(DEFAULT_RERANKER)
    result: dict[str, Any] = {
        "command": "python -m loadtest.bench_retrieval_quality " + shlex.join(
            sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d"), "depth": DEPTH, "exclude_status": ROUTE_EXCLUDE,
        "sets": []}
    sample = [w for d in sets[0].documents for w in fixed_windows(document_text(d))][:256]
    result["encode_cost"] = encode_cost(embedders, sample)
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        for s in sets:
            result["sets"].append(bench_set(s, grid, embedders, baseline_model, reranker,
                                            args.rerank_questions, Path(tmp), rerank_cache))
            baseline_model.cache.save()
            rerank_cache.save()
            result["average"] = averages(result["sets"])
            write(result, out)  # after each set: a long run that stops keeps what it did
    print(markdown_report(result))
    print(f"wrote {out}/bench_retrieval_quality.{{json,md,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
