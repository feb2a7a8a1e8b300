"""Reports of loadtest.bench_retrieval_quality: the markdown tables, the averages over the
sets and the chart, from the run's result dict (also usable on a saved JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

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


def write(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_retrieval_quality.json").write_text(json.dumps(result, indent=1))
    (out / "bench_retrieval_quality.md").write_text(markdown_report(result))
    plot(result, out / "bench_retrieval_quality.png")
