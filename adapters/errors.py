"""The errors the adapter registry, its sources and its checks raise; each sets its
`kind` (lorag_core.errors.ErrorKind)."""

from __future__ import annotations

from lorag_core.errors import DomainError, ErrorKind

__all__ = ["AdapterError", "InvalidInputError", "AdapterNotFoundError",
           "SourceUnavailableError"]


class AdapterError(DomainError):
    """Base of the adapters package's errors."""


class InvalidInputError(AdapterError):
    """A bad adapter name, version, source or base model, or an adapter folder that fails
    the checks (adapters.validation)."""

    kind = ErrorKind.INVALID


class AdapterNotFoundError(AdapterError):
    """No such adapter, or no such version of it, in the registry."""

    kind = ErrorKind.NOT_FOUND


class SourceUnavailableError(AdapterError):
    """The adapter's source (the Hugging Face hub, an object store) could not be read
    now."""

    kind = ErrorKind.UNAVAILABLE
