"""The evaluation's outputs: eval.json, eval.md (one row per route) and eval.png."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["ACCURACY_BARS", "markdown_table", "intervals_table", "pairs_table",
           "baseline_table", "CAUSE_COLUMNS", "CAUSES_NOTE", "causes_table",
           "baseline_causes_table", "INTERVALS_NOTE", "PAIRED_NOTE", "bar_chart",
           "write_report"]

ACCURACY_BARS = (("overall", "all questions"), ("single", "single"), ("multi", "multi"),
                 ("unanswerable", "unanswerable"), ("format", "format prompts"))


def _cell(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _replaced(m: dict[str, Any]) -> str:
    """'N (M answerable)': answers the grounding check replaced, and how many of them were
    to answerable questions or format prompts; '-' for a route without retrieval and for
    runs saved before the server reported its check."""
    if m.get("grounding_replaced") is None:
        return "-"
    return f"{m['grounding_replaced']} ({m['grounding_replaced_answerable']} answerable)"


def markdown_table(result: dict[str, Any]) -> str:
    """Routes as rows; accuracy by kind, retrieval, citations, format, latency, tokens.
    '-' marks what does not apply (no retrieval, no format prompts, no such kind)."""
    k = result["retrieval"]["k"]
    head = ["route", "accuracy", "single", "multi", "unanswerable", f"recall@{k}",
            "citation precision", "format validity", "format accuracy", "latency p50 (s)",
            "latency p95 (s)", "tokens/answer", "grounding replaced", "errors"]
    rows = []
    for name, route in result["routes"].items():
        m = route["metrics"]
        acc = m["accuracy"]
        rows.append([name, _cell(acc["overall"]), _cell(acc["single"]), _cell(acc["multi"]),
                     _cell(acc["unanswerable"]), _cell(m["recall_at_k"]),
                     _cell(m["citation_precision"]), _cell(m["format_validity"]),
                     _cell(m["format_accuracy"]), _cell(m["latency_p50_s"]),
                     _cell(m["latency_p95_s"]), _cell(m["tokens_per_answer"], 1),
                     _replaced(m), str(m["errors"])])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _ci(value: float | None, ci: list[float] | None) -> str:
    if value is None or ci is None:
        return "-"
    return f"{value:.2f} ({ci[0]:.2f}-{ci[1]:.2f})"


def intervals_table(result: dict[str, Any]) -> str:
    """Each accuracy with its 95% interval."""
    head = ["route", "accuracy", "single", "multi", "unanswerable", "format accuracy"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, route in result["routes"].items():
        m = route["metrics"]
        acc, ci = m["accuracy"], m["accuracy_ci"]
        cells = [_ci(acc[k], ci[k]) for k in ("overall", "single", "multi", "unanswerable")]
        cells.append(_ci(m["format_accuracy"], ci["format"]))
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def _kind_counts(c: dict[str, Any], kind: str) -> str:
    k = c.get("by_kind", {}).get(kind)
    return "-" if k is None else f"{k['only_a']}/{k['only_b']} (p {k['p_value']:.2f})"


def _paired_row(labels: list[str], c: dict[str, Any]) -> str:
    cells = [*labels, f"{c['a_correct']} / {c['b_correct']} of {c['questions']}",
             str(c["only_a"]), str(c["only_b"]), _cell(c["p_value"], 3),
             *(_kind_counts(c, k) for k in ("single", "multi", "unanswerable", "format"))]
    return "| " + " | ".join(cells) + " |"


def _paired_table(labels: list[str], a: str, b: str, rows: list[str]) -> str:
    head = [*labels, "correct: " + f"{a} / {b}", f"only {a} right", f"only {b} right",
            "p (McNemar)", "single", "multi", "unanswerable", "format"]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows])


def pairs_table(pairs: list[dict[str, Any]]) -> str:
    """Every two routes on the same questions: who alone got which right."""
    return _paired_table(["A", "B"], "A", "B",
                         [_paired_row([p["a"], p["b"]], p) for p in pairs])


def baseline_table(baseline: dict[str, Any]) -> str:
    """Each route against the same route in the baseline run (only this run right:
    fixed; only the baseline right: broken)."""
    return _paired_table(["route"], "baseline", "this run",
                         [_paired_row([r["route"]], r) for r in baseline["routes"]])


CAUSE_COLUMNS = (
    ("retrieval", "sources lacked a gold document"),
    ("grounding", "grounding check replaced it"),
    ("refused", "refused"),
    ("answered_wrong", "answered wrong"),
    ("format", "not the JSON format"),
    ("error", "request failed"),
    ("answered_unanswerable", "answered an unanswerable question"),
)
CAUSES_NOTE = (
    "Each wrong answer (questions and format prompts) counted once, under the first cause "
    "that applies in this order: request failed, not the JSON format (format prompts), "
    "sources lacked a gold document, grounding check replaced it, refused, answered wrong; "
    "an unanswerable question answered has its own column. For a retrieval route, refused "
    "and answered wrong mean "
    "its sources held every gold document: the model, not the search, missed the answer "
    "(a prompt, an adapter trained to use sources, or a larger model are the remedies); "
    "sources lacking a gold document point at retrieval (search mode, chunking, top_k, "
    "reranking).")


def _causes_row(label: str, c: dict[str, Any]) -> str:
    return "| " + " | ".join([label, str(c["wrong"]),
                              *(_cell(c[key]) for key, _ in CAUSE_COLUMNS)]) + " |"


def _causes_lines(first: str, rows: list[str]) -> str:
    head = [first, "wrong", *(label for _, label in CAUSE_COLUMNS)]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *rows])


def causes_table(result: dict[str, Any]) -> str | None:
    """Wrong answers per route by cause; None for runs saved before causes existed."""
    rows = []
    for name, route in result["routes"].items():
        c = route["metrics"].get("wrong_causes")
        if c is None:
            return None
        rows.append(_causes_row(name, c))
    return _causes_lines("route", rows)


def baseline_causes_table(baseline: dict[str, Any]) -> str | None:
    """Each shared route's wrong answers by cause in the baseline and in this run (a change
    that fixes retrieval misses may show them again as the model's); None when the
    baseline was saved before causes existed."""
    rows = []
    for r in baseline["routes"]:
        c = r.get("wrong_causes") or {}
        if c.get("baseline") is None or c.get("current") is None:
            continue
        rows += [_causes_row(f"{r['route']}, baseline", c["baseline"]),
                 _causes_row(f"{r['route']}, this run", c["current"])]
    return _causes_lines("route, run", rows) if rows else None


INTERVALS_NOTE = "Intervals: 95% Wilson score intervals."
PAIRED_NOTE = (
    "Paired counts: the questions one side got right and the other wrong (per kind as "
    "only A/only B, format prompts under format); p is the two-sided exact McNemar test on "
    "the questions' counts: a small p is unlikely to be luck, and with only a handful of "
    "such questions no difference can be shown.")


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
        "gold document / all cited sources. Grounding replaced: answers the route's grounding "
        "check turned into its no-context answer (those of answerable questions and format "
        "prompts in brackets). A failed request counts as wrong.\n"
        + _causes_markdown(result) + _stats_markdown(result))


def _causes_markdown(result: dict[str, Any]) -> str:
    table = causes_table(result)
    return "" if table is None else f"\n## Why answers were wrong\n\n{table}\n\n{CAUSES_NOTE}\n"


def _stats_markdown(result: dict[str, Any]) -> str:
    out = f"\n## How sure\n\n{intervals_table(result)}\n"
    if result.get("route_pairs"):
        out += f"\nRoutes compared on the same questions:\n\n{pairs_table(result['route_pairs'])}\n"
    if result.get("baseline"):
        b = result["baseline"]
        out += (f"\nAgainst the baseline `{b['path']}` (run {b.get('started_at') or '?'}), "
                f"questions matched by id and text:\n\n{baseline_table(b)}\n")
        if causes := baseline_causes_table(b):
            out += f"\nWrong answers by cause, baseline and this run:\n\n{causes}\n"
    return out + f"\n{INTERVALS_NOTE} {PAIRED_NOTE}\n"


def bar_chart(result: dict[str, Any], path: Path) -> Path:
    """Grouped bars: for each route, accuracy overall, by kind and on format prompts,
    with their 95% intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    routes = list(result["routes"])
    width = 0.8 / len(ACCURACY_BARS)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(routes) + 2), 4.5))
    for i, (key, label) in enumerate(ACCURACY_BARS):
        values, errors = [], [[], []]
        for name in routes:
            m = result["routes"][name]["metrics"]
            v = m["format_accuracy"] if key == "format" else m["accuracy"][key]
            ci = (m.get("accuracy_ci") or {}).get(key)
            values.append(math.nan if v is None else v)
            errors[0].append(0.0 if v is None or ci is None else v - ci[0])
            errors[1].append(0.0 if v is None or ci is None else ci[1] - v)
        xs = [j + (i - (len(ACCURACY_BARS) - 1) / 2) * width for j in range(len(routes))]
        bars = ax.bar(xs, values, width, label=label, yerr=errors, capsize=2,
                      error_kw={"elinewidth": 0.6, "alpha": 0.6})
        ax.bar_label(bars, labels=["" if math.isnan(v) else f"{v:.2f}" for v in values],
                     fontsize=6, padding=1)
    ax.set_xticks(range(len(routes)), routes)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.set_title("lorag eval: accuracy per route (95% intervals)")
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
