"""Write the training data of the sample `context-json` adapter (the `hybrid` route).

The adapter teaches SmolLM2 to answer a question from NUMBERED RETRIEVED SOURCES
with one JSON object, `{"answer": "...", "confidence": "high"|"medium"|"low"}`,
citing the source of each fact inline (`"€150 [2]"`), and to answer
`{"answer": "I don't know.", "confidence": "low"}` when the sources do not
hold the answer.

Every example is made the way the server makes a `hybrid` prompt:

1. A seeded generator invents organisations of many kinds (co-ops, clinics,
   schools, labs, clubs, municipal departments, shipping firms, ...), each with
   Markdown documents in the style of enterprise docs: overview, leadership,
   sibling site pages (same structure, other figures), current policies and
   their superseded versions, final and draft price lists, board minutes, SLAs,
   procedures, partner lists. A few paragraphs carry injected instructions.
2. Each organisation's documents go into a temporary index built by the
   project's own retrieval code (`retrieval.registry.IndexRegistry`, the route's
   IndexSpec: the real all-MiniLM-L6-v2 embedder and chunking).
3. Each question is searched like the route does (`top_k`, `rag.usable_hits`
   with `min_score`), the hits are fitted into `max_context_tokens` of the model's
   tokenizer (`rag.fit_sources`) and rendered with `rag.render_source` and
   `rag.build_messages` and the route's template from `configs/default.yaml`.
4. The target is labelled from what was actually retrieved: a fact is cited as
   [n] only if source n (from the fact's document) contains the fact's string;
   when retrieval missed it, the example becomes "I don't know." (and is dropped
   when the string shows up in a source of another document: not a clean miss).

Kinds of example: single facts (direct, paraphrased and informal questions,
near-duplicate distractors among the sources), two facts from two sources
(both cited, medium confidence), and unanswerable questions (facts the
documents never state, superseded-only rules, draft-only prices, sites that do
not exist; and masked ones: a stated fact asked of the index without the chunks
that state it, so every source is related and none answers). The held-out file
uses organisations that training never sees.

Nothing here comes from the evaluation knowledge base (evaluation/samples/helix).

    python tools/context_json_data/make_context_json.py --out-dir /tmp/x   # both files
    python tools/context_json_data/make_context_json.py --out-dir /tmp/x --train-orgs 2 \\
        --heldout-orgs 1 --meta                                   # a small set + metadata

Without --out-dir it rewrites `adapters/samples/data/context_json.*.jsonl`. Those
committed files are NOT what this generator writes today: they are the data the
committed `context-json` and `context-json-qwen0.5b` adapters were trained on, written
by an earlier version of it (tools/context_json_data/README.md).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA = ROOT / "adapters" / "samples" / "data"  # where the sample adapters' data is kept
for _dir in (ROOT, HERE):  # the project (serving, retrieval) and context_json/ beside this
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))


def main(argv: list[str] | None = None) -> int:
    from context_json.examples import generate, make_orgs
    from context_json.retrieve import Renderer
    from context_json.settings import HELDOUT_ORGS, QUOTA, SEED, TRAIN_ORGS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DATA)
    parser.add_argument("--train-orgs", type=int, default=TRAIN_ORGS)
    parser.add_argument("--heldout-orgs", type=int, default=HELDOUT_ORGS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--meta", action="store_true",
                        help="also write <split>.meta.jsonl (sources, gold facts, kind)")
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    used: set[str] = set()
    train_orgs = make_orgs(args.train_orgs, rng, used)
    held_orgs = make_orgs(args.heldout_orgs, random.Random(args.seed + 1), used)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="context-json-") as work:
        renderer = Renderer(Path(work))
        for split, orgs, prefix in [("train", train_orgs, "train"),
                                    ("heldout", held_orgs, "held")]:
            stats: Counter = Counter()
            rows = generate(orgs, renderer, prefix, QUOTA, stats)
            path = args.out_dir / f"context_json.{split}.jsonl"
            path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x, _ in rows),
                            encoding="utf-8")
            if args.meta:
                (args.out_dir / f"context_json.{split}.meta.jsonl").write_text(
                    "".join(json.dumps(m, ensure_ascii=False) + "\n" for _, m in rows),
                    encoding="utf-8")
            lengths = sorted(m["tokens"] for _, m in rows)
            injected = sum(m["injected"] for _, m in rows)
            print(f"{path}: {len(rows)} examples from {len(orgs)} organisations; "
                  f"{injected} with an injected instruction among the sources; tokens "
                  f"min {lengths[0]} median {lengths[len(lengths) // 2]} "
                  f"p90 {lengths[int(len(lengths) * 0.9)]} max {lengths[-1]}"
                  if rows else f"{path}: no examples")
            for key, n in sorted(stats.items()):
                print(f"  {key}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
