"""The checks a route's answer gets, in one order for whole and streamed answers.

`check_answer` is the one function: for a JSON answer, a Markdown code fence is taken off;
then the grounding check (an answer the sources do not support), citation fixing (a
``[n]`` re-pointed to the source that holds its sentence) and the `[n]` marker (an
answer that cites nothing). A whole answer is changed: an ungrounded one becomes the
route's no-context text (``"grounding": "replaced"``). A streamed answer is already sent
when its finishing chunk comes, so it is flagged instead (``"grounding": "failed"``,
``"citation_check": "mismatch"``); only the marker, which comes after the text, is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serving import rag
from serving.streaming import rewrite_events

__all__ = ["AnswerChecks", "check_answer", "check_whole_answer", "StreamChecks"]


@dataclass(frozen=True)
class AnswerChecks:
    """Which checks run. `grounding_texts` (the sources and the question) turns the
    grounding check on, `no_context_answer` replaces what fails it, `citation_sources`
    turns citation fixing on, `marker_sources` the marker, `json_answer` the unwrapping of
    a fenced JSON answer."""

    grounding_texts: list[str] | None = None
    no_context_answer: str = ""
    citation_sources: list[str] | None = None
    marker_sources: list[str] | None = None
    json_answer: bool = False

    @property
    def for_streams(self) -> bool:
        """Whether a stream has anything to check (a sent text keeps its fence)."""
        return self.grounding_texts is not None or bool(self.citation_sources
                                                         or self.marker_sources)

    @property
    def for_answers(self) -> bool:
        """Whether a whole answer has anything to check."""
        return self.for_streams or self.json_answer


def check_answer(text: str, checks: AnswerChecks, *, sent: bool = False
                 ) -> tuple[str, dict[str, str]]:
    """`text` after `checks`, and the fields its choice gets ("grounding",
    "citation_check"). With `sent` (a stream's text, already with the client) the text is
    only ever extended (the marker); what a whole answer would change is flagged."""
    fields: dict[str, str] = {}
    if checks.json_answer and not sent:
        text = rag.unwrap_json_fence(text)
    if checks.grounding_texts is not None:
        if not rag.grounded(text, checks.grounding_texts):
            if sent:
                return text, {"grounding": "failed"}
            return checks.no_context_answer, {"grounding": "replaced"}  # say "don't know"
        fields["grounding"] = "passed"
    if checks.citation_sources:
        fixed = rag.fix_citations(text, checks.citation_sources)
        if fixed != text:
            if sent:
                fields["citation_check"] = "mismatch"
            else:
                text = fixed
    if checks.marker_sources:
        text = rag.add_marker(text, checks.marker_sources)
    return text, fields


def check_whole_answer(body: dict[str, Any], checks: AnswerChecks) -> None:
    """A whole chat or completion response, each choice in turn (`check_answer`)."""
    for choice in body.get("choices", []):
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):  # chat
            message["content"], fields = check_answer(message["content"], checks)
        elif isinstance(choice.get("text"), str):  # completions
            choice["text"], fields = check_answer(choice["text"], checks)
        else:
            continue
        choice.update(fields)


class StreamChecks:
    """`check_answer` on a stream: each choice's text is gathered as it is relayed and
    checked on its finishing chunk (SSE in, SSE out). The marker goes into that chunk's
    delta; the flags into its choice."""

    def __init__(self, checks: AnswerChecks):
        self.checks = checks
        self.texts: dict[int, str] = {}

    def _edit(self, body: dict[str, Any]) -> bool:
        changed = False
        for choice in body.get("choices") or []:
            delta = choice.get("delta") or {}
            i = choice.get("index", 0)
            self.texts[i] = text = self.texts.get(i, "") + (delta.get("content") or "")
            if choice.get("finish_reason") is None:
                continue
            checked, fields = check_answer(text, self.checks, sent=True)
            if checked != text:  # only ever extended: the marker
                choice["delta"] = {**delta, "content": (delta.get("content") or "")
                                   + checked[len(text.rstrip()):]}
            if fields or checked != text:
                choice.update(fields)
                changed = True
        return changed

    def __call__(self, sse: str) -> str:
        return rewrite_events(sse, self._edit)
