"""The errors retrieval raises, in terms of indexes, documents and queries; each sets
its `kind` (lorag_core.errors.ErrorKind)."""

from __future__ import annotations

from lorag_core.errors import DomainError, ErrorKind, model_not_found_message

__all__ = ["RetrievalError", "InvalidInputError", "IndexNotFoundError", "IndexExistsError",
           "DocumentIdTakenError", "index_not_found",
           "UnknownEmbeddingModelError", "RerankerUnavailableError", "WriterUnavailableError"]


class RetrievalError(DomainError):
    """Base of retrieval's errors."""


class InvalidInputError(RetrievalError):
    """A malformed index name, document, query, filter or embedding input."""

    kind = ErrorKind.INVALID


class IndexNotFoundError(RetrievalError):
    kind = ErrorKind.NOT_FOUND


def index_not_found(name: str) -> IndexNotFoundError:
    """The one answer for an index that does not exist, or that an API key may not see
    (serving.auth): the same body, so names cannot be probed."""
    return IndexNotFoundError(f"index {name!r} does not exist.", param="index",
                              code="index_not_found")


class IndexExistsError(RetrievalError):
    kind = ErrorKind.CONFLICT


class DocumentIdTakenError(RetrievalError):
    """A write under an API key's filter names the doc_id of a document outside it."""

    kind = ErrorKind.CONFLICT


class UnknownEmbeddingModelError(RetrievalError):
    kind = ErrorKind.NOT_FOUND

    def __init__(self, model: str, known: list[str]):
        super().__init__(model_not_found_message(model, known), param="model",
                         code="model_not_found")


class RerankerUnavailableError(RetrievalError):
    """This replica does not hold the rerank model asked for (it started with another
    config); another replica may."""

    kind = ErrorKind.UNAVAILABLE


class WriterUnavailableError(RetrievalError):
    """storage: replicated: the one writer of the stores does not answer (its node is down
    or it is starting); nothing was written, a retry may work."""

    kind = ErrorKind.UNAVAILABLE
