"""The readers table of docs/readers.md: model x set x route from `lorag eval` runs.

    python -m loadtest.readers_table --out docs/results/readers/readers.md \\
        "SmolLM2-135M:helix:docs/results/readers/smollm2-135m-helix/eval.json" ...

Each argument is MODEL:SET:EVAL_JSON (every route of that run becomes a row; --routes
keeps only some, and EVAL_JSON@ROUTE,ROUTE only those of one run). Accuracies carry the 95% Wilson intervals `lorag eval` computed; the
goals of docs/readers.md are marked where a row meets them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

GOALS = {"single": 0.85, "multi": 0.5, "unanswerable": 0.8, "citation_precision": 0.95,
         "format_validity": 1.0}


def _acc(metrics: dict, kind: str) -> str:
    value = metrics["accuracy"].get(kind)
    if value is None:
        return "-"
    low, high = metrics["accuracy_ci"][kind]
    mark = " ✓" if value >= GOALS[kind] else ""
    return f"{value:.2f} ({low:.2f}-{high:.2f}){mark}"


def _share(value: float | None, goal: float | None = None, extra: str = "") -> str:
    if value is None:
        return "-"
    mark = " ✓" if goal is not None and value >= goal else ""
    return f"{value:.2f}{extra}{mark}"


def rows(model: str, dataset: str, path: Path, routes: list[str] | None) -> list[dict]:
    run = json.loads(path.read_text())
    out = []
    for route, body in run["routes"].items():
        if routes and route not in routes:
            continue
        m = body["metrics"]
        out.append({"model": model, "set": dataset, "route": route, "run": str(path),
                    "accuracy": m["accuracy"], "accuracy_ci": m["accuracy_ci"],
                    "citation_precision": m["citation_precision"],
                    "cited_sources": m.get("cited_sources"),
                    "format_validity": m["format_validity"],
                    "format_accuracy": m["format_accuracy"],
                    "latency_p50_s": m["latency_p50_s"],
                    "tokens_per_answer": m["tokens_per_answer"]})
    return out


def markdown(table: list[dict]) -> str:
    lines = ["| model | set | route | single | multi | unanswerable | citation precision "
             "(cited) | format validity | format accuracy | latency p50 (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        cited = f" ({r['cited_sources']})" if r.get("cited_sources") is not None else ""
        fa = r["format_accuracy"]
        fa_ci = r["accuracy_ci"].get("format")
        fa_text = f"{fa:.2f} ({fa_ci[0]:.2f}-{fa_ci[1]:.2f})" if fa is not None and fa_ci else "-"
        lines.append(
            f"| {r['model']} | {r['set']} | {r['route']} | {_acc(r, 'single')} | "
            f"{_acc(r, 'multi')} | {_acc(r, 'unanswerable')} | "
            f"{_share(r['citation_precision'], GOALS['citation_precision'], cited)} | "
            f"{_share(r['format_validity'], GOALS['format_validity'])} | {fa_text} | "
            f"{r['latency_p50_s']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.readers_table")
    parser.add_argument("runs", nargs="+", help="MODEL:SET:EVAL_JSON[@ROUTE,ROUTE]")
    parser.add_argument("--routes", type=lambda s: [r for r in s.split(",") if r])
    parser.add_argument("--out", type=Path, help="write the markdown here (and .json beside)")
    args = parser.parse_args(argv)
    table = []
    for spec in args.runs:
        model, dataset, path = spec.split(":", 2)
        path, _, only = path.partition("@")
        keep = [r for r in only.split(",") if r] or None
        table += [r for r in rows(model, dataset, Path(path), args.routes)
                  if keep is None or r["route"] in keep]
    text = markdown(table)
    print(text, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(table, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
