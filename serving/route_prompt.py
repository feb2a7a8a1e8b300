"""The typed contract between the ingress and an LLM replica: what a route adds to a
request.

The ingress builds a `RoutePrompt` for a request on a configured route (its template,
its retrieved sources, its limits and answer format); the LLM replica renders it with its
own tokenizer and checks the answer it gets back (`serving.answer_checks`). The template is
the route's `PromptTemplate`, validated once when the config loads, and crosses Ray as it
is (pickled), not re-validated per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from serving.route_settings import PromptTemplate

__all__ = ["RoutePrompt"]


@dataclass(frozen=True)
class RoutePrompt:
    """What a route adds to one request; every field is optional.

    - `template`: the route's instructions and source layout; None leaves the client's
      messages as they are.
    - `hits`: None on a route without retrieval; else the chunks that passed min_score,
      in rank order (empty: the ingress answers the no-context text itself).
    - `index`: the index searched (named in each citation).
    - `max_context_tokens`, `add_markers`, `check_grounding`, `fix_citations`: the route's
      retrieval settings the replica applies (docs/routes.md).
    - `max_prompt_tokens`: the route's cap on the client's prompt, counted by the replica.
    - `answer_format`: "json" when the route answers in JSON (a fenced answer is unwrapped).
    """

    template: PromptTemplate | None = None
    hits: list[dict[str, Any]] | None = None
    index: str | None = None
    max_context_tokens: int = 0
    add_markers: bool = False
    check_grounding: bool = False
    fix_citations: bool = False
    max_prompt_tokens: int | None = None
    answer_format: Literal["json"] | None = None

    @property
    def retrieval(self) -> bool:
        """Whether the route retrieved sources for this request."""
        return self.hits is not None
