"""The evaluation's outputs: eval.json, eval.md (one row per route) and eval.png."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

ACCURACY_BARS = (("overall", "all questions"), ("single", "single"), ("multi", "multi"),
                 ("unanswerable", "unanswerable"), ("format", "format prompts"))


def _cell(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(result: dict[str, Any]) -> str:
    """Routes as rows; accuracy by kind, retrieval, citations, format, latency, tokens.
    '-' marks what does not apply (no retrieval, no format prompts, no such kind)."""
    k = result["retrieval"]["k"]
    head = ["route", "accuracy", "single", "multi", "unanswerable", f"recall@{k}",
            "citation precision", "format validity", "format accuracy", "latency p50 (s)",
            "latency p95 (s)", "tokens/answer", "errors"]
    rows = []
    for name, route in result["routes"].items():
        m = route["metrics"]
        acc = m["accuracy"]
        rows.append([name, _cell(acc["overall"]), _cell(acc["single"]), _cell(acc["multi"]),
                     _cell(acc["unanswerable"]), _cell(m["recall_at_k"]),
                     _cell(m["citation_precision"]), _cell(m["format_validity"]),
                     _cell(m["format_accuracy"]), _cell(m["latency_p50_s"]),
                     _cell(m["latency_p95_s"]), _cell(m["tokens_per_answer"], 1),
                     str(m["errors"])])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown(result: dict[str, Any]) -> str:
    cfg, ret = result["config"], result["retrieval"]
    counts = ", ".join(f"{n} {kind}" for kind, n in cfg["question_counts"].items())
    return (
        f"# lorag eval\n\n"
        f"Server {cfg['url']}, corpus `{cfg['corpus']}` ({cfg['documents']} documents, "
        f"fresh index `{cfg['index']}`), questions `{cfg['questions']}` ({counts}), "
        f"{cfg['format_prompts_count']} format prompts.\n\n"
        f"{markdown_table(result)}\n\n"
        f"Accuracy: the normalized answer contains the gold answer or an alias; an "
        f"unanswerable question is correct when the answer says it does not know. "
        f"recall@{ret['k']}: mean share of gold documents in the top {ret['k']} chunks "
        f"(all found: {_cell(ret['all_found'])}). Citation precision: cited sources from a "
        f"gold document / all cited sources. A failed request counts as wrong.\n")


def bar_chart(result: dict[str, Any], path: Path) -> Path:
    """Grouped bars: for each route, accuracy overall, by kind and on format prompts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    routes = list(result["routes"])
    width = 0.8 / len(ACCURACY_BARS)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(routes) + 2), 4.5))
    for i, (key, label) in enumerate(ACCURACY_BARS):
        values = []
        for name in routes:
            m = result["routes"][name]["metrics"]
            v = m["format_accuracy"] if key == "format" else m["accuracy"][key]
            values.append(math.nan if v is None else v)
        xs = [j + (i - (len(ACCURACY_BARS) - 1) / 2) * width for j in range(len(routes))]
        bars = ax.bar(xs, values, width, label=label)
        ax.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.2f}" for v in values],
                     fontsize=6, padding=1)
    ax.set_xticks(range(len(routes)), routes)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.set_title("lorag eval: accuracy per route")
    ax.legend(fontsize="small", ncols=len(ACCURACY_BARS), loc="upper center",
              bbox_to_anchor=(0.5, -0.08), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(result: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write eval.json, eval.md and eval.png into `out`; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "eval.json", "markdown": out / "eval.md", "chart": out / "eval.png"}
    paths["json"].write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    paths["markdown"].write_text(_markdown(result))
    bar_chart(result, paths["chart"])
    return paths
