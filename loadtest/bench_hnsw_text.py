"""HNSW recall on real text embeddings, by efSearch: what the index default rests on.

    python -m loadtest.bench_hnsw_text [--chunks 20000] [--queries 500] [--out ...]

Random vectors (bench_retrieval) are the worst case for a graph index: they have
no neighbourhood structure. Text embeddings do. This takes real English text that
every install has offline - the docstrings of the installed Python packages - cuts
it into chunks, embeds them with the default embedder, and measures recall@k of
HNSW (the index's own M and efConstruction) against exact search, for held-out
text used as queries, at several efSearch values, with the search time of each.
Writes a JSON file.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import statistics
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

EF_VALUES = (16, 32, 64, 128, 256, 512)


def docstring_chunks(limit: int, min_chars: int = 200, max_chars: int = 600) -> list[str]:
    """Distinct docstring paragraphs of the installed packages, in a fixed order."""
    root = Path(sysconfig.get_paths()["purelib"])
    seen, out = set(), []
    for path in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                     ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node)
            for para in (doc or "").split("\n\n"):
                text = " ".join(para.split())
                if len(text) >= min_chars and text not in seen:
                    seen.add(text)
                    out.append(text[:max_chars])
                    if len(out) >= limit:
                        return out
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=20_000)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--out", type=Path, default=Path("results/bench_hnsw_text.json"))
    opts = p.parse_args(argv)

    import faiss

    from retrieval.embedder import Embedder
    from retrieval.spec import IndexSpec
    from retrieval.vector_index import VectorIndex

    spec = IndexSpec()
    texts = docstring_chunks(opts.chunks + opts.queries)
    random.Random(0).shuffle(texts)
    queries, corpus = texts[:opts.queries], texts[opts.queries:]
    print(f"{len(corpus)} chunks, {len(queries)} queries; embedding...", flush=True)
    embedder = Embedder(spec.embedder)
    started = time.perf_counter()
    vectors = embedder.encode(corpus)
    qv = embedder.encode(queries)
    print(f"  embedded in {time.perf_counter() - started:.0f}s", flush=True)
    ids = np.arange(len(corpus), dtype=np.int64)
    exact = VectorIndex(embedder.dim, "flat")
    exact.add(ids, vectors)
    truth = exact.search(qv, opts.k)[1]
    hnsw = VectorIndex(embedder.dim, "hnsw", hnsw_m=spec.hnsw_m)
    started = time.perf_counter()
    hnsw.add(ids, vectors)
    build_s = time.perf_counter() - started
    rows = []
    for ef in EF_VALUES:
        hnsw.ef_search = ef
        faiss.downcast_index(hnsw.index.index).hnsw.efSearch = ef
        found, times = [], []
        for q in qv:
            t0 = time.perf_counter()
            found.append(hnsw.search(q[None, :], opts.k)[1][0])
            times.append((time.perf_counter() - t0) * 1000)
        recall = float(np.mean([len(set(a) & set(b)) / opts.k for a, b in zip(truth, found)]))
        rows.append({"ef_search": ef, f"recall_at_{opts.k}": round(recall, 4),
                     "median_ms": round(statistics.median(times), 3)})
        print(f"  efSearch {ef:4d}: recall@{opts.k} {recall:.4f}, "
              f"median {statistics.median(times):.2f} ms", flush=True)
    report = {"chunks": len(corpus), "queries": len(queries), "k": opts.k,
              "hnsw_m": spec.hnsw_m, "build_s": round(build_s, 1), "embedder": spec.embedder,
              "default_ef_search": spec.ef_search, "results": rows}
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2))
    print(f"-> {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
