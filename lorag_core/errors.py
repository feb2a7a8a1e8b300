"""The base of the errors that the domain packages (retrieval, adapters) raise.

A domain error knows nothing of HTTP. It says what went wrong (`message`), which input
it concerns (`param`, a field name such as ``"source"``), a stable machine-readable
`code`, and its `kind`: the input is invalid, a named thing does not exist, it conflicts
with what exists, or something needed is unavailable for now (with `retry_after`
seconds when a retry is likely to work). `serving.errors.from_domain_error` turns the
kind into an HTTP status and OpenAI's error JSON at the edge.
"""

from __future__ import annotations

from enum import Enum
from typing import ClassVar

__all__ = ["DomainError", "ErrorKind", "model_not_found_message"]


class ErrorKind(Enum):
    INVALID = "invalid"          # the input is malformed or not allowed
    NOT_FOUND = "not_found"      # a named thing does not exist
    CONFLICT = "conflict"        # the request clashes with what exists
    UNAVAILABLE = "unavailable"  # cannot be done now; a later retry may work


class DomainError(Exception):
    """Base of every domain error; each concrete subclass sets `kind`."""

    kind: ClassVar[ErrorKind]

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after


def model_not_found_message(model: str, known: list[str]) -> str:
    """What a caller naming an unknown model is told (chat and embedding models alike)."""
    return f"The model `{model}` does not exist. Available models: {', '.join(known)}."
