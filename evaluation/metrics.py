"""From raw answers to the per-route figures of the report.

A raw record is what `EvalClient.ask` returns; `score_record` adds correctness,
format validity, cited doc_ids and, for a wrong answer, its cause; `route_metrics`
pools a route's records. A failed request counts as a wrong answer (and in `errors`).

Causes (`CAUSES`) say where a wrong answer went wrong, so that a user knows whether to
work on retrieval or on the model, first match wins:
  error             the request failed;
  format            a format prompt answered in another shape than the JSON format;
  retrieval         the route's sources lacked a gold document (retrieval routes);
  grounding         the route's grounding check replaced the model's answer;
  refused           the model said it does not know;
  answered_wrong    the model answered, wrongly;
  answered_unanswerable  an unanswerable question answered instead of refused.
For a retrieval route, refused and answered_wrong mean the sources held every gold
document: the reader, not the search, missed the answer.
"""

from __future__ import annotations

from typing import Any

from evaluation import scoring, stats
from evaluation.data import KINDS

__all__ = ["CAUSES", "score_record", "wrong_cause", "retrieval_metrics", "accuracy_by_kind",
           "accuracy_intervals", "route_metrics", "wrong_causes"]

CAUSES = ("error", "format", "retrieval", "grounding", "refused", "answered_wrong",
          "answered_unanswerable")


def score_record(record: dict[str, Any], item: Any, refusals: list[str]) -> dict[str, Any]:
    """`record` with `correct`, `format_valid`, `cited_doc_ids`, `context_recall` and
    `cause` (None for a right answer; see the module doc).

    A retrieval route that found no usable source answers its no-context text
    without generating (`citations: []`, no completion tokens): that is a refusal
    whatever the text says.
    """
    out = {**record, "question": item.question, "gold": item.answer,
           "aliases": list(item.aliases), "gold_doc_ids": list(item.doc_ids),
           "correct": False, "format_valid": False, "cited_doc_ids": None,
           "context_recall": None, "cause": None}
    if record["error"] is not None:
        return {**out, "cause": "error"}
    text, sources = record["answer"], record["retrieved_doc_ids"]
    fields = scoring.parse_format(text)
    answer = fields["answer"] if fields is not None else text
    out["format_valid"] = fields is not None
    out["cited_doc_ids"] = scoring.cited_doc_ids(answer, sources)
    if sources is not None and item.answerable:
        out["context_recall"] = scoring.recall(item.doc_ids, sources)
    no_context = sources == [] and not record["completion_tokens"]
    refused = no_context or scoring.says_dont_know(answer, refusals)
    if item.kind == "format":
        out["correct"] = fields is not None and scoring.is_correct(answer, item.answer,
                                                                   item.aliases)
    elif not item.answerable:
        out["correct"] = refused
    else:
        out["correct"] = scoring.is_correct(answer, item.answer, item.aliases)
    if not out["correct"]:
        out["cause"] = wrong_cause(item, out, refused)
    return out


def wrong_cause(item: Any, scored: dict[str, Any], refused: bool) -> str:
    """The cause of a wrong answer that got a response (module doc, first match wins)."""
    if not item.answerable:
        return "answered_unanswerable"
    if item.kind == "format" and not scored["format_valid"]:
        return "format"
    if scored["context_recall"] is not None and scored["context_recall"] < 1:
        return "retrieval"
    if scored.get("grounding") == "replaced":
        return "grounding"
    return "refused" if refused else "answered_wrong"


def retrieval_metrics(searches: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """recall@k over the answerable questions: mean per-question recall and the share
    of questions with every gold doc_id in the top k. Failed searches count as 0."""
    scored = [s for s in searches if s["doc_ids"]]
    recalls = [scoring.recall(s["doc_ids"], s["retrieved"] or []) for s in scored]
    return {"k": k, "questions": len(scored),
            "recall": scoring.mean(recalls),
            "all_found": scoring.share(r == 1.0 for r in recalls),
            "errors": sum(s["error"] is not None for s in searches)}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def accuracy_by_kind(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Share correct, overall and per question kind (None for a kind with no question)."""
    acc = {"overall": _round(scoring.share(r["correct"] for r in records))}
    for kind in KINDS:
        acc[kind] = _round(scoring.share(r["correct"] for r in records if r["kind"] == kind))
    return acc


def accuracy_intervals(records: list[dict[str, Any]], formats: list[dict[str, Any]]
                       ) -> dict[str, Any]:
    """95% Wilson intervals of the accuracies above and of format accuracy (None when
    there is no such question)."""
    out = {"overall": stats.interval_of([r["correct"] for r in records])}
    for kind in KINDS:
        out[kind] = stats.interval_of([r["correct"] for r in records if r["kind"] == kind])
    out["format"] = stats.interval_of([r["correct"] for r in formats])
    return out


def route_metrics(route: Any, questions: list[dict[str, Any]], formats: list[dict[str, Any]],
                  retrieval: dict[str, Any]) -> dict[str, Any]:
    """One route's row: accuracy by kind, retrieval, citations, format, latency, tokens.
    Retrieval figures are None (not 0) for a route without retrieval, format figures
    when there are no format prompts."""
    answerable = [r for r in questions if r["gold_doc_ids"]]
    has_retrieval = route.retrieval is not None
    precision, cited = scoring.citation_precision(
        (r["cited_doc_ids"] for r in answerable), (r["gold_doc_ids"] for r in answerable))
    done = [r for r in questions + formats if r["error"] is None]
    latencies = [r["latency_s"] for r in done]
    tokens = [r["completion_tokens"] for r in done if r["completion_tokens"] is not None]
    replaced = [r for r in questions + formats if r.get("grounding") == "replaced"]
    return {
        "questions": len(questions),
        "counts": {kind: sum(r["kind"] == kind for r in questions) for kind in KINDS},
        "accuracy": accuracy_by_kind(questions),
        "accuracy_ci": accuracy_intervals(questions, formats),
        "recall_at_k": _round(retrieval["recall"]) if has_retrieval else None,
        "recall_all_at_k": _round(retrieval["all_found"]) if has_retrieval else None,
        "k": retrieval["k"],
        "context_recall": _round(scoring.mean(r["context_recall"] for r in answerable))
        if has_retrieval else None,
        "citation_precision": _round(precision) if has_retrieval else None,
        "cited_sources": cited if has_retrieval else None,
        "format_prompts": len(formats),
        "format_validity": _round(scoring.share(r["format_valid"] for r in formats)),
        "format_accuracy": _round(scoring.share(r["correct"] for r in formats)),
        "latency_p50_s": _round(scoring.percentile(latencies, 50), 3),
        "latency_p95_s": _round(scoring.percentile(latencies, 95), 3),
        "tokens_per_answer": _round(scoring.mean(tokens), 1),
        # answers the grounding check replaced by the no-context answer: all, and those
        # of answerable questions and format prompts (each a refusal of a stated fact)
        "grounding_replaced": len(replaced) if has_retrieval else None,
        "grounding_replaced_answerable": sum(r["kind"] != "unanswerable" for r in replaced)
        if has_retrieval else None,
        "errors": sum(r["error"] is not None for r in questions + formats),
        "wrong_causes": wrong_causes(questions + formats, has_retrieval),
    }


def wrong_causes(records: list[dict[str, Any]], has_retrieval: bool) -> dict[str, Any]:
    """How many wrong answers (questions and format prompts) each cause explains;
    `retrieval` is None for a route without retrieval."""
    counts: dict[str, Any] = {c: sum(r.get("cause") == c for r in records) for c in CAUSES}
    counts["wrong"] = sum(not r["correct"] for r in records)
    if not has_retrieval:
        counts["retrieval"] = None
    return counts
