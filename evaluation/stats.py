"""How sure the figures are: intervals on accuracies, paired tests between routes and runs.

A question set of 40-100 questions moves by 0.02-0.03 a question, so "rag 0.40, hybrid
0.47" may be one question's luck. Each accuracy gets a 95% Wilson score interval, and two
routes (or one route in two runs) are compared on the same questions with the exact
McNemar test: only the questions one got right and the other wrong count, and under "no
difference" each of them is a fair coin. Both come from scipy.stats.binomtest.
"""

from __future__ import annotations

import itertools
from typing import Any

__all__ = ["LEVEL", "interval", "interval_of", "mcnemar", "paired", "route_pairs",
           "against_baseline", "BaselineError", "load_baseline"]

LEVEL = 0.95


def interval(correct: int, total: int, level: float = LEVEL) -> list[float] | None:
    """Wilson score interval of correct/total, as [low, high]; None without a question."""
    if total == 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(correct, total).proportion_ci(confidence_level=level, method="wilson")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def interval_of(flags: list[bool]) -> list[float] | None:
    return interval(sum(flags), len(flags))


def mcnemar(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 with none)."""
    if only_a + only_b == 0:
        return 1.0
    from scipy.stats import binomtest

    return round(float(binomtest(only_a, only_a + only_b, 0.5).pvalue), 4)


def _key(record: dict[str, Any]) -> tuple[str, str]:
    # id and question text: a question edited between two runs is not the same question.
    return record["id"], record["question"]


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Scored records of two routes (or runs) on the questions both answered: how many
    each got right and each alone got right, with the McNemar p-value, over the questions
    and per kind (format prompts are kind "format")."""
    b_by_key = {_key(r): r for r in b}
    pairs = [(r, b_by_key[_key(r)]) for r in a if _key(r) in b_by_key]
    out: dict[str, Any] = {"matched": len(pairs), "unmatched_a": len(a) - len(pairs),
                           "unmatched_b": len(b) - len(pairs)}
    kinds = sorted({r["kind"] for r, _ in pairs})
    for kind in [None, *kinds]:
        # Overall: the questions, as accuracy "overall" is; format prompts are a kind.
        sel = [(x, y) for x, y in pairs if x["kind"] == kind
               or (kind is None and x["kind"] != "format")]
        counts = {"questions": len(sel),
                  "a_correct": sum(x["correct"] for x, _ in sel),
                  "b_correct": sum(y["correct"] for _, y in sel),
                  "only_a": sum(x["correct"] and not y["correct"] for x, y in sel),
                  "only_b": sum(y["correct"] and not x["correct"] for x, y in sel)}
        counts["p_value"] = mcnemar(counts["only_a"], counts["only_b"])
        if kind is None:
            out.update(counts)
        else:
            out.setdefault("by_kind", {})[kind] = counts
    return out


def _records(route: dict[str, Any]) -> list[dict[str, Any]]:
    # Questions and format prompts (kind "format"): everything scored correct or not.
    return [*route["questions"], *route.get("format_prompts", [])]


def route_pairs(routes: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pair of a run's routes (`result["routes"]`), compared on the same questions
    and prompts."""
    return [{"a": a, "b": b, **paired(_records(routes[a]), _records(routes[b]))}
            for a, b in itertools.combinations(routes, 2)]


def against_baseline(result: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """Each route in both runs: the baseline run is `a`, this run `b` (only_b = fixed,
    only_a = broken), matched by question id and text; with each run's wrong answers by
    cause (`wrong_causes`: None for a run saved before causes existed)."""
    def causes(run: dict[str, Any], name: str) -> dict[str, Any] | None:
        return (run["routes"][name].get("metrics") or {}).get("wrong_causes")
    return [{"route": name, **paired(_records(baseline["routes"][name]),
                                     _records(result["routes"][name])),
             "wrong_causes": {"baseline": causes(baseline, name),
                              "current": causes(result, name)}}
            for name in result["routes"] if name in baseline["routes"]]


class BaselineError(ValueError):
    """A --baseline file that is not an eval.json."""


def load_baseline(path: Any) -> dict[str, Any]:
    """An earlier run's eval.json, checked for what the comparison reads."""
    import json
    from pathlib import Path

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise BaselineError(f"{path}: cannot read: {err.strerror or err}") from None
    except ValueError as err:
        raise BaselineError(f"{path}: not JSON: {err}") from None
    routes = data.get("routes") if isinstance(data, dict) else None
    if not isinstance(routes, dict) or not routes:
        raise BaselineError(f"{path}: not a lorag eval.json (no \"routes\")")
    for name, route in routes.items():
        records = route.get("questions") if isinstance(route, dict) else None
        if not isinstance(records, list) or not all(
                isinstance(r, dict) and {"id", "question", "kind", "correct"} <= r.keys()
                for r in [*records, *(route.get("format_prompts") or [])]):
            raise BaselineError(f"{path}: route {name!r} has no scored questions "
                                "(id, question, kind, correct)")
    return data
