"""Retrieval benchmark: lorag's index layer against raw FAISS, and ingestion against raw encode.

    python -m loadtest.bench_retrieval [--sizes 10000,100000,1000000] [--out results/]

Search: synthetic unit vectors (384-d, the default embedder's size) per size and
index type: build time, queries/s at batch 1 and 64, p50/p99 latency per batch
and recall@10 against exact search; the same queries on a raw FAISS index of the
same kind and parameters, in the same run, give the ratio lorag/raw (goal >= 0.9).
HNSW builds above --max-hnsw-size are skipped (a 1M-vector HNSW build takes far
longer than a CI-sized machine should spend) and reported as skipped.

Ingestion: chunks/s of KnowledgeBase.add_documents (chunk, embed, SQLite commit,
FAISS add) against SentenceTransformer.encode on the very same chunk texts
(goal >= 0.8). Writes bench_retrieval.json and bench_retrieval.png.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.empty((n, DIM), dtype=np.float32)
    for i in range(0, n, 100_000):  # chunked: keeps peak memory near the final array
        x = rng.standard_normal((min(100_000, n - i), DIM)).astype(np.float32)
        out[i:i + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def raw_index(kind: str, ef_search: int, m: int = 32, ef_construction: int = 200):
    import faiss

    if kind == "flat":
        inner = faiss.IndexFlatIP(DIM)
    else:
        inner = faiss.IndexHNSWFlat(DIM, m, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = ef_construction
        inner.hnsw.efSearch = ef_search
    return faiss.IndexIDMap2(inner)


def compare(ours, raw, queries: np.ndarray, batch: int, seconds: float,
            rounds: int = 6) -> tuple[dict, dict]:
    """Alternate short timed runs of both, so drift (CPU boost, other load) hits both."""
    lat = {"ours": [], "raw": []}
    spent = {"ours": 0.0, "raw": 0.0}
    done = {"ours": 0, "raw": 0}
    for r in range(rounds):
        for name, fn in (("ours", ours), ("raw", raw)) if r % 2 == 0 else (("raw", raw), ("ours", ours)):
            start, i = time.perf_counter(), 0
            while time.perf_counter() - start < seconds / rounds or i < 3 * batch:
                q = queries[i % (len(queries) - batch + 1):][:batch]
                t = time.perf_counter()
                fn(q)
                lat[name].append(time.perf_counter() - t)
                i += batch
            spent[name] += time.perf_counter() - start
            done[name] += i

    def summary(name: str) -> dict:
        return {"qps": done[name] / spent[name],
                "p50_ms": float(np.percentile(lat[name], 50) * 1000),
                "p99_ms": float(np.percentile(lat[name], 99) * 1000),
                "batches": len(lat[name])}

    return summary("ours"), summary("raw")


def bench_size(n: int, kind: str, opts: argparse.Namespace) -> dict:
    from retrieval.vector_index import VectorIndex

    rng = np.random.default_rng(n)
    vectors, queries = unit(rng, n), unit(rng, 1000)
    ids = np.arange(n, dtype=np.int64)
    result: dict = {"size": n, "type": kind}

    ours = VectorIndex(DIM, kind, hnsw_m=opts.hnsw_m, ef_construction=opts.ef_construction,
                       ef_search=opts.ef_search, use_gpu=opts.gpu)
    t = time.perf_counter()
    ours.add(ids, vectors)
    result["build_s"] = time.perf_counter() - t
    raw = raw_index(kind, opts.ef_search, opts.hnsw_m, opts.ef_construction)
    t = time.perf_counter()
    raw.add_with_ids(vectors, ids)
    result["raw_build_s"] = time.perf_counter() - t

    exact = np.argsort(-(queries[:100] @ vectors.T), axis=1)[:, :10] if n <= 200_000 else None
    if exact is None:  # exact ground truth via a flat FAISS index (same math, less memory)
        import faiss

        flat = faiss.IndexFlatIP(DIM)
        flat.add(vectors)
        exact = flat.search(queries[:100], 10)[1]
    got = ours.search(queries[:100], 10)[1]
    result["recall_at_10"] = float(np.mean([len(set(a) & set(b)) / 10
                                            for a, b in zip(exact, got)]))
    for batch in (1, 64):
        mine, theirs = compare(lambda q: ours.search(q, 10), lambda q: raw.search(q, 10),
                               queries, batch, opts.seconds)
        result[f"batch{batch}"] = {"lorag": mine, "raw_faiss": theirs,
                                   "qps_ratio": mine["qps"] / theirs["qps"]}
    print(f"{kind:5} n={n:>8}: build {result['build_s']:.1f}s, recall@10 "
          f"{result['recall_at_10']:.3f}, qps b1 {result['batch1']['lorag']['qps']:.0f} "
          f"(ratio {result['batch1']['qps_ratio']:.2f}), b64 "
          f"{result['batch64']['lorag']['qps']:.0f} (ratio {result['batch64']['qps_ratio']:.2f})",
          flush=True)
    return result


def bench_ingestion(opts: argparse.Namespace) -> dict:
    from retrieval.embedder import Embedder
    from retrieval.knowledge_base import Document
    from retrieval.registry import IndexRegistry
    from retrieval.spec import IndexSpec

    rng = np.random.default_rng(7)
    words = ("river valley lantern ferry copper zebra otter archive policy budget quarterly "
             "engineer network deploy cluster index vector answer source report").split()
    docs = [Document(doc_id=f"doc{i}", title=f"Doc {i}", text="\n\n".join(
        " ".join(rng.choice(words, 12)) + "." for _ in range(30)))
        for i in range(opts.ingest_docs)]
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as tmp:
        kb = IndexRegistry(Path(tmp), embedder_factory=lambda n: embedder).create(
            "bench", IndexSpec(type="hnsw"))
        kb.add_documents(docs[:2])  # warm-up: first call pays one-time costs
        t = time.perf_counter()
        for i in range(2, len(docs), 50):
            kb.add_documents(docs[i:i + 50])
        ours_s = time.perf_counter() - t
        texts = [r[0] for r in kb.store.db.execute(
            "SELECT text FROM chunks WHERE doc_id NOT IN ('doc0', 'doc1') ORDER BY id")]
        kb.close()
    t = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
    raw_s = time.perf_counter() - t
    result = {"documents": len(docs) - 2, "chunks": len(texts),
              "lorag_chunks_per_s": len(texts) / ours_s, "raw_encode_chunks_per_s": len(texts) / raw_s}
    result["ratio"] = result["lorag_chunks_per_s"] / result["raw_encode_chunks_per_s"]
    print(f"ingestion: {result['lorag_chunks_per_s']:.0f} chunks/s vs raw encode "
          f"{result['raw_encode_chunks_per_s']:.0f} (ratio {result['ratio']:.2f})", flush=True)
    return result


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for kind in sorted({r["type"] for r in results}):
        rows = [r for r in results if r["type"] == kind and "batch1" in r]
        sizes = [r["size"] for r in rows]
        for batch, ax in zip((1, 64), axes):
            ax.plot(sizes, [r[f"batch{batch}"]["lorag"]["qps"] for r in rows], "o-",
                    label=f"lorag {kind}")
            ax.plot(sizes, [r[f"batch{batch}"]["raw_faiss"]["qps"] for r in rows], "x--",
                    label=f"raw FAISS {kind}")
            ax.set(xscale="log", yscale="log", xlabel="vectors (384-d)", ylabel="queries/s",
                   title=f"search, batch {batch}")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--types", default="flat,hnsw")
    p.add_argument("--max-hnsw-size", type=int, default=100_000)
    p.add_argument("--ef-search", type=int, default=512)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--skip-ingestion", action="store_true")
    p.add_argument("--seconds", type=float, default=3.0, help="time per QPS measurement")
    p.add_argument("--ingest-docs", type=int, default=202)
    p.add_argument("--gpu", action="store_true", help="use faiss-gpu for flat search")
    p.add_argument("--out", type=Path, default=Path("results"))
    opts = p.parse_args(argv)
    opts.out.mkdir(parents=True, exist_ok=True)
    results, skipped = [], []
    for n in (int(s) for s in opts.sizes.split(",")):
        for kind in opts.types.split(","):
            if kind == "hnsw" and n > opts.max_hnsw_size:
                skipped.append({"size": n, "type": kind,
                                "reason": f"HNSW build above --max-hnsw-size={opts.max_hnsw_size}"})
                print(f"{kind:5} n={n:>8}: skipped (raise --max-hnsw-size to build it)")
                continue
            results.append(bench_size(n, kind, opts))
    ingestion = None if opts.skip_ingestion else bench_ingestion(opts)
    report = {"dim": DIM, "params": {"ef_search": opts.ef_search, "hnsw_m": opts.hnsw_m,
                                     "ef_construction": opts.ef_construction}, "search": results, "skipped": skipped, "ingestion": ingestion,
              "goals": {"qps_ratio_min": 0.9, "ingestion_ratio_min": 0.8}}
    (opts.out / "bench_retrieval.json").write_text(json.dumps(report, indent=2))
    plot(results, opts.out / "bench_retrieval.png")
    print(f"wrote {opts.out / 'bench_retrieval.json'} and bench_retrieval.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
