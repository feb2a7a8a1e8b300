"""How answers are scored: pure functions, no server.

- `normalize`: lowercase, NFKC, thousands separators dropped ("4,200" -> "4200"),
  "%" spelled "percent", apostrophes dropped, other punctuation -> spaces,
  whitespace collapsed. The same function runs on answers and gold strings.
- `is_correct`: the normalized gold answer (or an alias) occurs in the
  normalized answer on word boundaries ("150" is not found in "1500").
- `says_dont_know`: a refusal phrase (or the route's no-context answer) occurs.
- `parse_format`: the JSON answer format ``{"answer": str, "confidence": ...}``.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from serving.rag import cited_numbers

__all__ = ["CONFIDENCES", "REFUSALS", "normalize", "contains", "is_correct",
           "says_dont_know", "parse_format", "scored_text", "refusal_phrases",
           "score_answer", "cited_doc_ids", "recall", "mean", "share", "percentile",
           "citation_precision"]

CONFIDENCES = frozenset({"high", "medium", "low"})
REFUSALS = (
    "i don't know", "i do not know", "i dont know", "not in the sources",
    "not in the provided sources", "cannot find", "can't find", "could not find",
    "couldn't find", "no information", "not mentioned", "do not contain",
    "don't contain", "does not contain", "doesn't contain", "not enough information",
    "unable to answer", "cannot answer", "can't answer", "i'm not sure", "i am not sure",
)

_THOUSANDS_RE = re.compile(r"(?<=\d)[,\u202f\u00a0](?=\d{3}(?!\d))")
_APOSTROPHE_RE = re.compile(r"['\u2019`]")
_PUNCT_RE = re.compile(r"[^\w\s]|_")


def normalize(text: str) -> str:
    """Lowercased words and numbers separated by single spaces.

    >>> normalize("It's 4,200 m², 91%!")
    'its 4200 m2 91 percent'
    """
    text = unicodedata.normalize("NFKC", text or "").lower()
    text = _THOUSANDS_RE.sub("", text)
    text = text.replace("%", " percent ")
    text = _APOSTROPHE_RE.sub("", text)
    return " ".join(_PUNCT_RE.sub(" ", text).split())


def contains(haystack: str, needle: str) -> bool:
    """Whether normalized `needle` occurs in normalized `haystack` on word boundaries."""
    needle = normalize(needle)
    return bool(needle) and f" {needle} " in f" {normalize(haystack)} "


def is_correct(answer: str, gold: str, aliases: Iterable[str] = ()) -> bool:
    return any(contains(answer, g) for g in (gold, *aliases))


def says_dont_know(answer: str, extra: Iterable[str] = ()) -> bool:
    """Whether `answer` says it does not know: a phrase of REFUSALS or of `extra`
    (the route's configured no-context answer) occurs in it."""
    return any(contains(answer, p) for p in (*REFUSALS, *extra))


def parse_format(text: str) -> dict[str, str] | None:
    """The answer as ``{"answer": str, "confidence": "high"|"medium"|"low"}``, or
    None when it is not exactly that JSON object (surrounding whitespace allowed)."""
    try:
        body = json.loads(text)
    except (TypeError, ValueError):
        return None
    if (isinstance(body, dict) and set(body) == {"answer", "confidence"}
            and isinstance(body["answer"], str) and body["confidence"] in CONFIDENCES):
        return body
    return None


def scored_text(text: str) -> str:
    """What is checked for correctness: the "answer" field of a JSON-format answer
    (the tuned and hybrid routes), else the text itself."""
    body = parse_format(text)
    return body["answer"] if body is not None else text


def refusal_phrases(no_context_answer: str | None) -> list[str]:
    """The route's no-context answer as a refusal phrase (its "answer" field when it
    is a JSON-format answer)."""
    if not no_context_answer:
        return []
    return [scored_text(no_context_answer)]


def score_answer(text: str, item: Any, refusals: Sequence[str] = ()) -> bool:
    """Correctness of one answer to a question or format prompt (see module doc)."""
    answer = scored_text(text)
    if not item.answerable:
        return says_dont_know(answer, refusals)
    return is_correct(answer, item.answer, item.aliases)


def cited_doc_ids(text: str, sources: list[str] | None) -> list[str] | None:
    """doc_ids of the sources an answer cites: `sources` holds the doc_id of each entry
    of the response's `citations` array, and marker [n] cites entry n-1 (one doc_id per
    cited source: two chunks of one document count twice). None when there are no
    citations (a route without retrieval); an answer without markers cites nothing."""
    if sources is None:
        return None
    return [sources[n - 1] for n in cited_numbers(text, len(sources))]


def recall(gold: Iterable[str], retrieved: Iterable[str]) -> float:
    """Share of the gold doc_ids found among the retrieved ones."""
    gold = set(gold)
    return len(gold & set(retrieved)) / len(gold) if gold else math.nan


def mean(values: Iterable[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else None


def share(flags: Iterable[bool]) -> float | None:
    return mean(1.0 if f else 0.0 for f in flags)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks (NumPy's default)."""
    data = sorted(values)
    if not data:
        return None
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def citation_precision(cited: Iterable[list[str] | None],
                       gold: Iterable[Iterable[str]]) -> tuple[float | None, int]:
    """(cited sources whose doc_id is gold / all cited sources, number cited), pooled
    over answers; precision is None when nothing was cited."""
    good = total = 0
    for docs, gold_ids in zip(cited, gold, strict=True):
        gold_set = set(gold_ids)
        for doc in docs or []:
            total += 1
            good += doc in gold_set
    return (good / total if total else None), total
