"""One error shape on every endpoint, OpenAI's, and every handler in one place.

Clients always get ``{"error": {"message", "type", "param", "code"}}`` with the
right HTTP status. Messages never carry a stack trace or a server path; a 500
carries the request id so that the log line can be found.

The domain packages (retrieval, adapters) raise `lorag_core.errors.DomainError`s, which
know nothing of HTTP; `from_domain_error` maps each kind to its status and type here.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from lorag_core.errors import DomainError, ErrorKind, model_not_found_message

__all__ = ["REQUEST_ID_HEADER", "LoragError", "InvalidRequestError", "NotFoundError",
           "ConflictError", "PayloadTooLargeError", "ServiceUnavailableError",
           "AuthenticationError", "PermissionDeniedError", "RateLimitError",
           "GatewayTimeoutError", "ModelNotFoundError", "from_domain_error", "error_body",
           "sanitize", "from_vllm_error", "RETRY_AFTER_S", "from_internal_error",
           "error_to_wire", "error_from_wire", "pydantic_param", "from_pydantic_error",
           "register_exception_handlers"]

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"


class LoragError(Exception):
    """Base of every error lorag reports to a client."""

    status: int = HTTPStatus.INTERNAL_SERVER_ERROR
    type: str = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})  # sent with the error (Retry-After, ...)

    def to_body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


class InvalidRequestError(LoragError):
    status = HTTPStatus.BAD_REQUEST
    type = "invalid_request_error"


class NotFoundError(LoragError):
    status = HTTPStatus.NOT_FOUND
    type = "invalid_request_error"


class ConflictError(LoragError):
    status = HTTPStatus.CONFLICT
    type = "invalid_request_error"


class PayloadTooLargeError(LoragError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    type = "invalid_request_error"


class ServiceUnavailableError(LoragError):
    status = HTTPStatus.SERVICE_UNAVAILABLE
    type = "server_error"

    def __init__(self, message: str, *, retry_after: int | None = None, **kw: Any):
        super().__init__(message, **kw)
        if retry_after is not None:
            self.headers["Retry-After"] = str(retry_after)


class AuthenticationError(LoragError):
    status = HTTPStatus.UNAUTHORIZED
    type = "invalid_request_error"  # OpenAI's type for 401s (code invalid_api_key)

    def __init__(self, message: str, **kw: Any):
        super().__init__(message, **kw)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class PermissionDeniedError(LoragError):
    status = HTTPStatus.FORBIDDEN
    type = "invalid_request_error"


class RateLimitError(LoragError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    type = "requests"  # OpenAI's type for rate limits

    def __init__(self, message: str, *, retry_after: int, **kw: Any):
        super().__init__(message, **kw)
        self.headers["Retry-After"] = str(retry_after)


class GatewayTimeoutError(LoragError):
    status = HTTPStatus.GATEWAY_TIMEOUT
    type = "server_error"


class ModelNotFoundError(NotFoundError):
    def __init__(self, model: str, known: list[str]):
        super().__init__(model_not_found_message(model, known), param="model",
                         code="model_not_found")


_BY_KIND: dict[ErrorKind, type[LoragError]] = {
    ErrorKind.INVALID: InvalidRequestError,        # 400
    ErrorKind.NOT_FOUND: NotFoundError,            # 404
    ErrorKind.CONFLICT: ConflictError,             # 409
    ErrorKind.UNAVAILABLE: ServiceUnavailableError,  # 503, Retry-After when the error has one
}


def from_domain_error(err: DomainError) -> LoragError:
    """A domain package's error as the client sees it: its kind picks the status and
    OpenAI type; message, param and code pass through unchanged."""
    exc = _BY_KIND[err.kind](err.message, param=err.param, code=err.code)
    if err.retry_after is not None:
        exc.headers["Retry-After"] = str(err.retry_after)
    return exc


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": sanitize(message), "type": type_, "param": param, "code": code}}


# Any absolute path of two or more parts (not the path part of a URL like s3://b/k),
# and any *.py file name.
_PATH_RE = re.compile(
    r"(?<![:\w/])/(?!v1/)[\w.\-]+(?:/[\w.\-]+)+"  # API paths (/v1/...) are not files
    r"|(?:[\w.\-]*/)*[\w\-]+\.py\b"
)
_TRACE_RE = re.compile(r'\n?\s*File "[^"]+", line \d+, in \S+(\n\s+.*)?')


def sanitize(message: str) -> str:
    """Strip file paths and traceback lines from a message meant for a client."""
    message = _TRACE_RE.sub("", message)
    return _PATH_RE.sub("<path>", message).strip()


# vLLM names the prompt `input_tokens` / `input_text`; OpenAI clients expect
# `messages` / `prompt`, and the code `context_length_exceeded` for an overflow.
_PROMPT_PARAMS = {"input_tokens", "input_text"}


def from_vllm_error(error: dict[str, Any], prompt_param: str) -> LoragError:
    """Map the `error` object of a vLLM ErrorResponse onto a LoragError."""
    status = int(error.get("code") or 500)
    message = str(error.get("message") or "request failed")
    param = error.get("param")
    code = None
    if "maximum context length" in message:
        code = "context_length_exceeded"
        if param is None:
            param = prompt_param
    if param in _PROMPT_PARAMS:
        param = prompt_param
    if status == HTTPStatus.NOT_FOUND:
        return NotFoundError(message, param=param, code=code or "not_found")
    if 400 <= status < 500:
        err = InvalidRequestError(message, param=param, code=code)
        err.status = status
        return err
    # An engine failure (vLLM's 500s: engine dead, internal error) is a 503 the client may
    # retry: Ray Serve replaces a replica whose engine died (its health check fails).
    return ServiceUnavailableError(message, code="engine_error", retry_after=RETRY_AFTER_S)


# How long a client should wait before retrying after a replica failure or a full
# queue: Ray Serve replaces a dead replica in seconds (an LLM replica needs its start-up).
RETRY_AFTER_S = 5


def from_internal_error(exc: BaseException) -> LoragError | None:
    """A Ray / timeout failure between deployments as the client should see it: a full
    queue or a lost replica is a 503 with Retry-After, a timeout a 504; None for other
    errors (a bug: 500)."""
    if isinstance(exc, LoragError):
        return exc
    if isinstance(exc, DomainError):
        return from_domain_error(exc)
    if isinstance(exc, (TimeoutError,)):
        return GatewayTimeoutError("The request timed out waiting for the model; retry later.",
                                   code="timeout")
    try:
        from ray import exceptions as ray_errors
        from ray.serve import exceptions as serve_errors
    except ImportError:  # pragma: no cover - ray is a dependency
        return None
    if isinstance(exc, serve_errors.BackPressureError):
        return ServiceUnavailableError(
            "The server is at capacity (its request queue is full); retry later.",
            code="overloaded", retry_after=RETRY_AFTER_S)
    if isinstance(exc, (ray_errors.GetTimeoutError, ray_errors.RayChannelTimeoutError)):
        return GatewayTimeoutError("The request timed out inside the server; retry later.",
                                   code="timeout")
    if isinstance(exc, ray_errors.RayTaskError):  # the replica's code raised
        return ServiceUnavailableError(
            "The model or retriever failed on this request; retry later.",
            code="engine_error", retry_after=RETRY_AFTER_S)
    if isinstance(exc, (ray_errors.RayActorError, ray_errors.ActorUnavailableError,
                        serve_errors.DeploymentUnavailableError,
                        serve_errors.ReplicaUnavailableError)):
        return ServiceUnavailableError(
            "A model or retriever replica failed while serving this request; it is being "
            "replaced. Retry later.", code="replica_unavailable", retry_after=RETRY_AFTER_S)
    return None


def error_to_wire(err: LoragError | DomainError) -> dict[str, Any]:
    """A typed error as plain data, to cross a Ray deployment boundary intact (a domain
    error as the client will see it)."""
    if isinstance(err, DomainError):
        err = from_domain_error(err)
    return {"status": int(err.status), "type": err.type, "message": err.message,
            "param": err.param, "code": err.code, "headers": err.headers}


def error_from_wire(err: dict[str, Any]) -> LoragError:
    exc = LoragError(err["message"], param=err.get("param"), code=err.get("code"),
                     headers=err.get("headers"))
    exc.status, exc.type = err["status"], err["type"]
    return exc


def pydantic_param(loc: tuple[Any, ...]) -> str | None:
    """Turn a pydantic error location into a dotted OpenAI `param`.

    Drops pydantic's internal segments (union branches such as
    ``function-wrap[...]`` or ``list[...]``) so that clients see
    ``messages.0.role`` rather than the validator's schema path.
    """
    parts = [
        str(p)
        for p in loc
        if p != "body" and not re.search(r"[\[\]{}()]", str(p)) and not _is_schema_kind(str(p))
    ]
    return ".".join(parts) or None


_SCHEMA_KINDS = {"function-wrap", "function-after", "function-before", "union", "tagged-union",
                 "json-or-python", "lax-or-strict", "chain", "default", "nullable", "str",
                 "int", "float", "bool", "list", "dict", "none"}


def _is_schema_kind(segment: str) -> bool:
    return segment.lower() in _SCHEMA_KINDS


def from_pydantic_error(err: Any) -> InvalidRequestError:
    """Map a pydantic ValidationError of a request body onto a 400."""
    errors = err.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {}
    ctx_error = (first.get("ctx") or {}).get("error")
    param = getattr(ctx_error, "parameter", None) or pydantic_param(tuple(first.get("loc", ())))
    msg = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    message = f"{param}: {msg}" if param else msg
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more validation errors)"
    return InvalidRequestError(message, param=param, code="invalid_value")


def register_exception_handlers(app: Any) -> None:
    """Install the handlers that turn every failure into OpenAI's error JSON."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    def respond(status: int, body: dict[str, Any]) -> JSONResponse:
        return JSONResponse(body, status_code=int(status))

    @app.exception_handler(LoragError)
    async def _lorag(_request, exc: LoragError):
        return JSONResponse(exc.to_body(), status_code=int(exc.status), headers=exc.headers)

    @app.exception_handler(DomainError)
    async def _domain(request, exc: DomainError):
        return await _lorag(request, from_domain_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request, exc: RequestValidationError):
        return respond(400, from_pydantic_error(_Errors(exc.errors())).to_body())

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request, exc: StarletteHTTPException):
        type_ = "invalid_request_error" if exc.status_code < 500 else "server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return respond(exc.status_code, error_body(str(exc.detail), type_, None, code))

    @app.exception_handler(Exception)
    async def _unexpected(request, exc: Exception):
        if (mapped := from_internal_error(exc)) is not None:
            logger.warning("request failed inside the server: %r", exc)
            return JSONResponse(mapped.to_body(), status_code=int(mapped.status),
                                headers=mapped.headers)
        request_id = request.headers.get(REQUEST_ID_HEADER) or getattr(
            request.state, "request_id", "unknown"
        )
        logger.exception("unhandled error in request %s", request_id)
        return respond(
            500,
            error_body(
                f"The server had an error processing request {request_id}.",
                "server_error",
            ),
        )


class _Errors:
    """Adapter so FastAPI's already-extracted error list reads like a ValidationError."""

    def __init__(self, errors: Any):
        self._errors = list(errors)

    def errors(self, **_kw: Any) -> list[dict[str, Any]]:
        return self._errors
