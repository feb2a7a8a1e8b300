"""Wire models: parse and check OpenAI request bodies into vLLM's own protocol.

vLLM's `ChatCompletionRequest` / `CompletionRequest` carry every OpenAI field
(n, stop, seed, stream_options, ...) and turn into sampling parameters inside
vLLM's serving layer. We add the checks OpenAI makes that vLLM leaves to the
engine (so the client gets a 400 naming the parameter, not a failed stream).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from serving.errors import InvalidRequestError, PayloadTooLargeError, from_pydantic_error
from serving.sampling import MAX_STOP, SAMPLING

__all__ = ["CHAT_ROLES", "read_body", "decode_json_body", "prompt_logprobs_error",
           "parse_chat_request", "parse_completion_request"]

CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


async def read_body(request: Any, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `max_bytes`:
    from Content-Length before reading, else while streaming it in (chunked uploads)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(
            f"Request body is {int(declared)} bytes; the limit is {max_bytes}.",
            code="request_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(
                f"Request body exceeds the limit of {max_bytes} bytes.", code="request_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json_body(raw: bytes, max_bytes: int) -> dict[str, Any]:
    """Decode a request body; malformed JSON or a non-object is a 400."""
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(
            f"Request body is {len(raw)} bytes; the limit is {max_bytes}.",
            code="request_too_large",
        )
    if not raw.strip():
        raise InvalidRequestError("Request body is empty; expected a JSON object.",
                                  code="invalid_json")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidRequestError(
            f"Request body is not valid JSON: {getattr(err, 'msg', 'cannot decode')} "
            f"at position {getattr(err, 'pos', 0)}.",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("Request body must be a JSON object.", code="invalid_json")
    return body


def _require_model(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "you must provide a model parameter (a string)", param="model", code="missing_model"
        )


def _check_sampling(body: dict[str, Any]) -> None:
    """OpenAI's ranges, checked before the engine sees the request."""

    def bad(param: str, rule: str) -> InvalidRequestError:
        return InvalidRequestError(
            f"Invalid value for '{param}': {body[param]!r}; {rule}.",
            param=param,
            code="invalid_value",
        )

    for param, allowed in SAMPLING.items():
        value = body.get(param)
        if value is not None and not allowed.admits(value):
            raise bad(param, allowed.rule())
    stop = body.get("stop")
    if isinstance(stop, list) and len(stop) > MAX_STOP:
        raise bad("stop", f"at most {MAX_STOP} stop sequences are allowed")
    opts = body.get("stream_options")
    if opts is not None and not body.get("stream"):
        raise InvalidRequestError(
            "stream_options is only allowed when stream is true.",
            param="stream_options",
            code="invalid_value",
        )


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise InvalidRequestError(
            "'messages' must be an array of message objects.", param="messages",
            code="invalid_type",
        )
    if not messages:
        raise InvalidRequestError(
            "'messages' must contain at least one message.", param="messages",
            code="empty_array",
        )
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise InvalidRequestError(
                f"messages[{i}] must be an object.", param=f"messages.{i}", code="invalid_type"
            )
        role = msg.get("role")
        if not isinstance(role, str) or role not in CHAT_ROLES:
            raise InvalidRequestError(
                f"Invalid value for messages[{i}].role: {role!r}; expected one of "
                f"{', '.join(sorted(CHAT_ROLES))}.",
                param=f"messages.{i}.role",
                code="invalid_value",
            )
        if msg.get("content") is None and role != "assistant":
            raise InvalidRequestError(
                f"messages[{i}].content is required for role {role!r}.",
                param=f"messages.{i}.content",
                code="missing_required_parameter",
            )
        if msg.get("content") == []:  # as OpenAI: an array of parts needs one part
            raise InvalidRequestError(
                f"Invalid 'messages[{i}].content': empty array. Expected an array with "
                "at least one content part.", param=f"messages.{i}.content",
                code="empty_array",
            )


def _check_prompt(prompt: Any) -> None:
    empty = prompt is None or prompt == "" or prompt == [] or (
        isinstance(prompt, list) and any(p in ("", []) for p in prompt)
    )
    if empty:
        raise InvalidRequestError(
            "'prompt' must be a non-empty string, array of strings, or token array.",
            param="prompt",
            code="invalid_value",
        )


def prompt_logprobs_error(request: Any, model_key: str, enable_lora: bool
                          ) -> InvalidRequestError | None:
    """The 400 for a request that asks for prompt log-probabilities from an engine that
    serves LoRA adapters. vLLM 0.32 computes them through the LoRA logits layer with the
    batch's per-sequence mapping and fails on a batch of several requests
    (vllm-project/vllm#29955, #16668; `punica_cpu.add_lora_logits` on CPU): the engine
    dies and every request in flight fails, so they are refused up front - by the
    ingress before a retrieval route searches, and by the LLM replica for the rest."""
    if not enable_lora:
        return None
    param = "prompt_logprobs"
    wanted = getattr(request, "prompt_logprobs", None)
    if wanted is None and getattr(request, "echo", False):
        # vLLM's own rule: echo asks for prompt log-probabilities with top_logprobs
        # (chat, default 0) or logprobs (completions, default none)
        param = "echo"
        wanted = (request.top_logprobs if hasattr(request, "messages")
                  else getattr(request, "logprobs", None))
    if wanted is None:
        return None
    return InvalidRequestError(
        f"`{param}` asks for the prompt's log-probabilities, which model {model_key!r} "
        "cannot compute: its engine serves LoRA adapters (engine.enable_lora) and vLLM "
        "fails computing prompt log-probabilities for such an engine. Leave out "
        "prompt_logprobs (and echo).", param=param, code="unsupported_parameter")


def parse_chat_request(body: dict[str, Any]):
    """Validate a chat body into vLLM's ChatCompletionRequest (400s name the parameter)."""
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    _require_model(body)
    _check_messages(body.get("messages"))
    _check_sampling(body)
    request = _validate(ChatCompletionRequest, body)
    _materialize_messages(request)
    return request


def _materialize_messages(request: Any) -> None:
    """vLLM types some message fields as `Iterable[...]`, which pydantic validates lazily
    into a `ValidatorIterator`: it cannot be pickled (the request goes to the LLM replica
    through Ray) and validates only when iterated. Make them lists here, where a bad item
    is still a 400."""
    for i, msg in enumerate(request.messages):
        if not isinstance(msg, dict):
            continue
        for key, value in list(msg.items()):
            if hasattr(value, "__next__") and not isinstance(value, (str, bytes, list, dict)):
                try:
                    msg[key] = list(value)
                except ValidationError as err:
                    first = (err.errors(include_url=False, include_input=False) or [{}])[0]
                    raise InvalidRequestError(
                        f"messages.{i}.{key}: {first.get('msg', 'invalid value')}",
                        param=f"messages.{i}.{key}", code="invalid_value") from None


def parse_completion_request(body: dict[str, Any]):
    """Validate a completions body into vLLM's CompletionRequest."""
    from vllm.entrypoints.openai.completion.protocol import CompletionRequest

    _require_model(body)
    _check_prompt(body.get("prompt"))
    _check_sampling(body)
    if "max_completion_tokens" in body:
        raise InvalidRequestError(
            "max_completion_tokens is a chat parameter; use max_tokens with /v1/completions.",
            param="max_completion_tokens",
            code="unknown_parameter",
        )
    return _validate(CompletionRequest, body)


def _validate(model_cls: Any, body: dict[str, Any]):
    try:
        return model_cls.model_validate(body)
    except ValidationError as err:
        raise from_pydantic_error(err) from None
    except ValueError as err:  # vLLM's before-validators may raise directly
        raise InvalidRequestError(str(err), param=getattr(err, "parameter", None)) from None
