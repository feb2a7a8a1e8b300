"""What `retrieval.rerank` buys and costs: where the gold document lands, and seconds a request.

    python -m loadtest.bench_rerank [--corpus DIR --questions Q.jsonl] [--candidates 8]
                                    [--top-k 4] [--threads 1,2] [--out FILE.json]

Indexes the corpus (default: the helix sample set) with the config's index spec, in a
data dir of its own, and for every answerable question takes the index's top
`--candidates` chunks and reranks them as the retriever does
(`retrieval.reranker.QueryLikelihoodReranker`, SmolLM2-135M by default). Reports, for
similarity order and reranked order: the share of questions whose first chunk is from a
gold document, and recall of the gold documents in the kept `--top-k`. Then the time to
score one request's candidates, per torch thread count (the retriever replica runs with
the threads Ray gives it: 1 for num_cpus 0.5). Prints the figures and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "evaluation" / "samples" / "helix"


def _shown(path: str) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.bench_rerank")
    parser.add_argument("--corpus", default=str(SAMPLE / "docs"))
    parser.add_argument("--questions", default=str(SAMPLE / "questions.jsonl"))
    parser.add_argument("--model", default=None, help="rerank model source (default: the "
                        "config's smollm2-135m-instruct)")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--out", default="results/bench_rerank.json")
    opts = parser.parse_args(argv)

    import torch

    from retrieval.files import load_documents
    from retrieval.knowledge_base import Document
    from retrieval.registry import IndexRegistry
    from retrieval.reranker import QueryLikelihoodReranker, keep_reranked
    from serving.config import load_config

    cfg = load_config()
    spec = next(iter(cfg.indexes.values())).spec()
    questions = [json.loads(line) for line in Path(opts.questions).read_text().splitlines()
                 if line.strip()]
    answerable = [q for q in questions if q["doc_ids"]]
    registry = IndexRegistry(Path(tempfile.mkdtemp(prefix="bench-rerank-")))
    kb = registry.create("bench", spec)
    kb.add_documents([Document.model_validate(d) for d in load_documents([opts.corpus])])
    scorer = QueryLikelihoodReranker(
        opts.model or cfg.retrieval.rerank_models["smollm2-135m-instruct"])

    first = {"similarity": 0, "reranked": 0}
    recall = {"similarity": 0.0, "reranked": 0.0}
    cases = []
    for q in answerable:
        hits = [dict(h) for h in kb.search(q["question"], opts.candidates)]
        kept = keep_reranked(hits, scorer.score(q["question"], [h["text"] for h in hits]),
                             opts.top_k)
        best = max(kept, key=lambda h: h["rerank_score"])
        gold = set(q["doc_ids"])
        first["similarity"] += hits[0]["doc_id"] in gold
        first["reranked"] += best["doc_id"] in gold
        recall["similarity"] += len(gold & {h["doc_id"] for h in hits[:opts.top_k]}) / len(gold)
        recall["reranked"] += len(gold & {h["doc_id"] for h in kept}) / len(gold)
        cases.append((q["question"], [h["text"] for h in hits]))
    n = len(answerable)
    result = {
        "corpus": _shown(opts.corpus), "questions": n, "candidates": opts.candidates,
        "top_k": opts.top_k,
        "gold_first": {k: round(v / n, 3) for k, v in first.items()},
        f"recall_at_{opts.top_k}": {k: round(v / n, 3) for k, v in recall.items()},
        "seconds_per_request": {},
    }
    print(f"{n} answerable questions, {opts.candidates} candidates, keep {opts.top_k}")
    for order in ("similarity", "reranked"):
        print(f"  {order:10}: gold first {first[order]}/{n}, "
              f"recall@{opts.top_k} {recall[order] / n:.3f}")
    for threads in [int(t) for t in opts.threads.split(",")]:
        torch.set_num_threads(threads)
        scorer.score(*cases[0])  # warm-up
        times = []
        for question, texts in cases:
            t0 = time.perf_counter()
            scorer.score(question, texts)
            times.append(time.perf_counter() - t0)
        times.sort()
        row = {"p50": round(statistics.median(times), 3),
               "p95": round(times[int(0.95 * (len(times) - 1))], 3)}
        result["seconds_per_request"][str(threads)] = row
        print(f"  {threads} thread(s): {row['p50']:.2f} s p50, {row['p95']:.2f} s p95 "
              f"a request ({opts.candidates} candidates)")
    Path(opts.out).parent.mkdir(parents=True, exist_ok=True)
    Path(opts.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {opts.out}")
    registry.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
