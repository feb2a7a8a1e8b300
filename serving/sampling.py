"""OpenAI's sampling parameters and their ranges, written once.

The request parser (`serving.protocol`), the OpenAPI document (`serving.openapi`) and the
route defaults of the config (`serving.route_settings.SamplingDefaults`) all read
`SAMPLING`, so a request, the published schema and a route's defaults cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Range", "SAMPLING", "MAX_N", "MAX_STOP"]

MAX_N = 16      # choices per request
MAX_STOP = 4    # stop sequences (OpenAI's limit)


@dataclass(frozen=True)
class Range:
    """A numeric parameter: integer or number, with its bounds (None: unbounded)."""

    integer: bool
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    def admits(self, value: Any) -> bool:
        """Whether `value` (not None) is of the right type and inside the bounds."""
        kinds = (int,) if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return False
        if self.minimum is not None and (value <= self.minimum if self.exclusive_minimum
                                         else value < self.minimum):
            return False
        return self.maximum is None or value <= self.maximum

    def rule(self) -> str:
        """What `admits` wants, in words, for error messages."""
        kind = "an integer" if self.integer else "a number"
        low, high = _num(self.minimum), _num(self.maximum)
        if self.exclusive_minimum:
            return f"expected {kind} greater than {low}" + (
                f" and at most {high}" if self.maximum is not None else "")
        if self.minimum is not None and self.maximum is not None:
            return f"expected {kind} between {low} and {high}"
        if self.minimum is not None:
            return f"expected {kind} of at least {low}"
        return f"expected {kind}"

    def json_schema(self) -> dict[str, Any]:
        """The parameter's JSON schema (null allowed: unset)."""
        out: dict[str, Any] = {"type": ["integer" if self.integer else "number", "null"]}
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out

    def field_bounds(self) -> dict[str, Any]:
        """pydantic `Field` keywords (ge / gt / le)."""
        out: dict[str, Any] = {}
        if self.minimum is not None:
            out["gt" if self.exclusive_minimum else "ge"] = self.minimum
        if self.maximum is not None:
            out["le"] = self.maximum
        return out


def _num(x: float | None) -> str:
    return f"{x:g}" if x is not None else ""


SAMPLING: dict[str, Range] = {
    "max_tokens": Range(integer=True, minimum=1),
    "max_completion_tokens": Range(integer=True, minimum=1),
    "temperature": Range(integer=False, minimum=0, maximum=2),
    "top_p": Range(integer=False, minimum=0, maximum=1, exclusive_minimum=True),
    "presence_penalty": Range(integer=False, minimum=-2, maximum=2),
    "frequency_penalty": Range(integer=False, minimum=-2, maximum=2),
    "repetition_penalty": Range(integer=False, minimum=0, exclusive_minimum=True),
    "n": Range(integer=True, minimum=1, maximum=MAX_N),
}
