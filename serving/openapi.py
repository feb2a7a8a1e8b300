"""Request body schemas for the ingress's OpenAPI document (/openapi.json, /docs).

The endpoints read their bodies themselves (to answer bad JSON with OpenAI's error
shape rather than FastAPI's), so FastAPI cannot infer the bodies; these schemas
describe them for clients, docs and fuzzers (schemathesis, tests/e2e/test_fuzz.py).
The generation schemas list the common OpenAI parameters; vLLM accepts more.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from serving.sampling import MAX_STOP, SAMPLING

__all__ = ["CHAT", "COMPLETION", "body", "UPLOAD"]

_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
        "content": {"type": "string"},
        "name": {"type": "string"},
    },
}

_SAMPLING = {  # max_completion_tokens: chat only
    **{name: allowed.json_schema() for name, allowed in SAMPLING.items()
       if name != "max_completion_tokens"},
    "stream": {"type": ["boolean", "null"]},
    "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                             "maxItems": MAX_STOP}, {"type": "null"}]},
    "seed": {"type": ["integer", "null"]},
    "user": {"type": "string"},
}

CHAT = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "description": "A route, or a loaded adapter."},
        "messages": {"type": "array", "items": _MESSAGE, "minItems": 1},
        "max_completion_tokens": SAMPLING["max_completion_tokens"].json_schema(),
        "index": {"type": "string", "description": "lorag: search this index instead of "
                  "the route's (retrieval routes only)."},
        **_SAMPLING,
    },
}

COMPLETION = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        "model": {"type": "string"},
        "prompt": {"oneOf": [{"type": "string", "minLength": 1},
                             {"type": "array", "items": {"type": "string", "minLength": 1},
                              "minItems": 1}]},
        **_SAMPLING,
    },
}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its `$defs` inlined (the OpenAPI document resolves
    `$ref`s from its own root, where pydantic's `#/$defs/...` do not exist). Keys beside
    a `$ref` (a field's description) are kept over the inlined definition's."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                beside = {k: walk(v) for k, v in node.items() if k != "$ref"}
                return {**walk(copy.deepcopy(defs[ref.removeprefix("#/$defs/")])), **beside}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def body(schema: dict[str, Any] | type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose JSON body follows `schema`."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        schema = _inline(schema.model_json_schema())
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}


UPLOAD = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "properties": {"files": {"type": "array", "items": {
        "type": "string", "format": "binary"}}}}}}}}
