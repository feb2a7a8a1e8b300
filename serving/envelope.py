"""The one reply shape of calls between Ray Serve deployments.

A deployment method that can fail on a client's input answers ``{"result": value}`` or
``{"error": <wire error>}`` rather than raising, so the client's error (status, type,
message, param, code) crosses the process boundary intact: the retriever, the adapter
registry, and an LLM replica's first item (a whole answer or an error; a stream's first
item is its first SSE string instead). `unwrap` is the one place that turns a reply back
into its value or raises its error.
"""

from __future__ import annotations

from typing import Any

from lorag_core.errors import DomainError
from serving.errors import LoragError, error_from_wire, error_to_wire

__all__ = ["ok", "failed", "unwrap"]


def ok(value: Any) -> dict[str, Any]:
    """A successful reply."""
    return {"result": value}


def failed(err: LoragError | DomainError) -> dict[str, Any]:
    """A failed reply: the error as the client will see it."""
    return {"error": error_to_wire(err)}


def unwrap(reply: dict[str, Any]) -> Any:
    """The value of a reply; raises its error as a LoragError."""
    if "error" in reply:
        raise error_from_wire(reply["error"])
    return reply["result"]
