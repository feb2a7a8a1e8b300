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
import os
import random
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
    from loadtest.evaluation.stats import mcnemar

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


class VectorCache:
    """One model's vectors (or scores) by sha256 of what made them, kept in one .npz file
    (keys and a matrix), so that a second run of the benchmark embeds only texts it has
    not seen: the same model gives the same vectors."""

    def __init__(self, path: Path | None):
        self.path = path
        self.items: dict[str, np.ndarray] = {}
        self._dirty = False
        if path is not None and path.exists():
            with np.load(path) as data:
                self.items = dict(zip(data["keys"].tolist(), data["values"], strict=True))

    @classmethod
    def for_model(cls, folder: Path | None, model: str) -> VectorCache:
        import re

        if folder is None:
            return cls(None)
        return cls(folder / (re.sub(r"[^A-Za-z0-9.-]+", "_", model) + ".npz"))

    @staticmethod
    def key(*parts: str) -> str:
        import hashlib

        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def get(self, key: str) -> np.ndarray | None:
        return self.items.get(key)

    def put(self, key: str, value: np.ndarray) -> None:
        self.items[key] = value
        self._dirty = True

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # another run may have added to it since we loaded it
            self.items = {**VectorCache(self.path).items, **self.items}
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=np.array(list(self.items)), values=np.stack(list(self.items.values())))
        tmp.replace(self.path)
        self._dirty = False


class CachedEmbedder:
    """An Embedder that remembers each text's vector (in `cache`, shared with earlier
    runs), so settings that chunk alike embed once. Same vectors as the wrapped embedder:
    it computes every text it has not seen."""

    def __init__(self, embedder: Any, cache: VectorCache | None = None):
        self.inner = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self.max_tokens = embedder.max_tokens
        self.cache = cache or VectorCache(None)
        self.encoded = 0  # texts actually encoded (not from the cache)
        self.encode_seconds = 0.0

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def _cached(self, texts: list[str], kind: str, encode) -> np.ndarray:
        keys = [self.cache.key(self.name, kind, t) for t in texts]
        new = {k: t for k, t in zip(keys, texts, strict=True) if self.cache.get(k) is None}
        if new:
            start = time.perf_counter()
            for k, v in zip(new, encode(list(new.values())), strict=True):
                self.cache.put(k, np.asarray(v, dtype=np.float32))
            if kind == "doc":
                self.encoded += len(new)
                self.encode_seconds += time.perf_counter() - start
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.cache.get(k) for k in keys]).astype(np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._cached(texts, "doc", self.inner.encode)

    def encode_query(self, texts: list[str]) -> np.ndarray:
        return self._cached(texts, "query", self.inner.encode_query)


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

        from retrieval.embedder import resolve_embedder

        self.model = SentenceTransformer(resolve_embedder(name), device="cpu",
                                         local_files_only=True)
        self.name = f"raw:{name}"
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=64, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)

    encode_query = encode

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer.encode(text, add_special_tokens=False))


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
    from serving.model_source import cache_dir

    return cache_dir() / "bench-retrieval-quality"


COLUMNS = ["recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"]


def markdown_report(result: dict[str, Any]) -> str:
    lines = ["# Retrieval quality on real documents", "",
             f"Command: `{result['command']}`", "",
             "Metrics over each question's top 10 chunks (a document counts at its first "
             "chunk). Δr@5 and p: recall@5 against the baseline on the same questions "
             "(questions only this setting / only the baseline finds; exact McNemar p).", ""]
    for s in result["sets"]:
        info = s["set"]
        pkgs = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
        lines += [f"## {info['name']} ({pkgs})", "",
                  f"{info['questions']} questions, {info['documents']} documents; rule: "
                  f"{info['rule']}.", "",
                  "| setting | " + " | ".join(COLUMNS) + " | Δr@5 | +/- | p | chunks | "
                  "search ms |",
                  "|---|" + "---|" * (len(COLUMNS) + 5)]
        b = s["baseline"]
        lines.append("| baseline (MiniLM + flat IP, 800/120 windows) | " +
                     " | ".join(f"{b['metrics'][c]:.3f}" for c in COLUMNS) +
                     f" | | | | {b['chunks']} | |")
        for name, r in s["settings"].items():
            m, v = r["metrics"], r["vs_baseline"]
            delta = m["recall@5"] - b["metrics"]["recall@5"]
            lines.append(f"| {name} | " + " | ".join(f"{m[c]:.3f}" for c in COLUMNS) +
                         f" | {delta:+.3f} | {v['only_this']}/{v['only_other']} | {v['p']} | "
                         f"{r['index']['chunks']} | {r['search_ms']} |")
        if "rerank" in s:
            rr = s["rerank"]
            lines += ["", f"Reranker (SmolLM2-135M query likelihood over the default's top "
                      f"{rr['candidates']}) on {rr['questions']} questions, "
                      + (f"{rr['seconds_per_question']} s a question"
                         if rr['seconds_per_question'] is not None else
                         "not timed (scores cached by an earlier run)") + ": recall@5 "
                      f"{rr['default']['recall@5']:.3f} -> {rr['reranked']['recall@5']:.3f}, "
                      f"MRR@10 {rr['default']['mrr@10']:.3f} -> {rr['reranked']['mrr@10']:.3f} "
                      f"(fixed/broken {rr['vs_default']['only_this']}/"
                      f"{rr['vs_default']['only_other']}, p {rr['vs_default']['p']}), recall@1 "
                      f"{rr['default']['recall@1']:.3f} -> {rr['reranked']['recall@1']:.3f} "
                      f"({rr['vs_default_top1']['only_this']}/"
                      f"{rr['vs_default_top1']['only_other']}, p {rr['vs_default_top1']['p']}); "
                      f"baseline on the same questions {rr['baseline']['recall@5']:.3f} / "
                      f"{rr['baseline']['mrr@10']:.3f}."]
        lines.append("")
    if result.get("encode_cost"):
        lines += ["## Embedders", "", "Encoding the same 800-character chunks (batches of "
                  "64, uncached) on this machine's CPU:", "",
                  "| embedder | ms a chunk | dimensions | bytes a vector |", "|---|---|---|---|"]
        for name, c in result["encode_cost"].items():
            lines.append(f"| {name} | {c['ms_per_chunk']} | {c['dim']} | "
                         f"{c['bytes_per_vector']} |")
        lines.append("")
    if result.get("average"):
        lines += ["## Averaged over the sets", "", "| setting | recall@5 | mrr@10 | Δr@5 |",
                  "|---|---|---|---|"]
        base = result["average"]["baseline"]
        for name, m in result["average"].items():
            lines.append(f"| {name} | {m['recall@5']:.3f} | {m['mrr@10']:.3f} | "
                         f"{m['recall@5'] - base['recall@5']:+.3f} |")
        lines.append("")
    return "\n".join(lines)


def averages(sets: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each setting's metrics averaged over the sets that ran it (all of them only)."""
    names = ["baseline"] + [n for n in sets[0]["settings"]
                            if all(n in s["settings"] for s in sets)]
    out = {}
    for name in names:
        rows = [s["baseline"]["metrics"] if name == "baseline" else
                s["settings"][name]["metrics"] for s in sets]
        out[name] = {k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}
    return out


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = result["sets"]
    names = ["baseline"] + list(sets[0]["settings"])
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.35 * len(names) + 2), sharey=True)
    for ax, metric in zip(axes, ("recall@5", "mrr@10"), strict=True):
        height = 0.8 / len(sets)
        for j, s in enumerate(sets):
            values = [s["baseline"]["metrics"][metric] if n == "baseline" else
                      s["settings"].get(n, {}).get("metrics", {}).get(metric, np.nan)
                      for n in names]
            ax.barh(np.arange(len(names)) + j * height, values, height,
                    label=s["set"]["name"])
            base = s["baseline"]["metrics"][metric]
            ax.axvline(base, color=f"C{j}", ls=":", lw=1)
        ax.set_title(f"{metric} (dotted: baseline)")
        ax.set_xlim(0, 1)
        ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2, names)
    axes[0].invert_yaxis()  # the axes share y: once inverts both
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(sets), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def write(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_retrieval_quality.json").write_text(json.dumps(result, indent=1))
    (out / "bench_retrieval_quality.md").write_text(markdown_report(result))
    plot(result, out / "bench_retrieval_quality.png")


if __name__ == "__main__":
    sys.exit(main())
