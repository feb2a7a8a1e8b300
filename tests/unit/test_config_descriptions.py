"""Every config field says what it is, and no description quotes one machine's timings.

The config is the tree of pydantic models reachable from `serving.config.LoragConfig`
(nested models inside lists, dicts, Optionals, unions and Annotated included). Each
field's `description` is what the JSON schema and the OpenAPI document show, so it must
state what the field does (and its unit), not how fast something ran on one machine:
a number directly before a time unit ("~3 ms a query", "0.6 s", "~1 min") or a speed
ratio ("10x slower") fails; a unit in a definition ("in seconds") is fine.
"""

from __future__ import annotations

import inspect
import re
import typing

from pydantic import BaseModel

from serving.config import LoragConfig

# A number (decimals too) directly followed by a time unit, or a speed ratio ("10x slower").
TIMING = re.compile(
    r"\d+(?:[.,]\d+)?\s*(?:ns|us|µs|μs|ms|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?)\b"
    r"|\d+(?:\.\d+)?\s*x\s+(?:faster|slower)\b",
    re.IGNORECASE)


def config_models(root: type[BaseModel] = LoragConfig) -> list[type[BaseModel]]:
    """`root` and every model class its fields' types reach, in discovery order."""
    found: list[type[BaseModel]] = []

    def visit(tp: typing.Any) -> None:
        if inspect.isclass(tp) and issubclass(tp, BaseModel):
            if tp not in found:
                found.append(tp)
                for field in tp.model_fields.values():
                    visit(field.annotation)
            return
        for arg in typing.get_args(tp):  # list[X], dict[K, V], X | None, Annotated[X, ...]
            visit(arg)

    visit(root)
    return found


def undescribed(models: list[type[BaseModel]]) -> list[str]:
    return [f"{m.__module__}.{m.__qualname__}.{name}"
            for m in models for name, field in m.model_fields.items()
            if not (field.description or "").strip()]


def timings(models: list[type[BaseModel]]) -> list[str]:
    out = []
    for m in models:
        texts = {f"{m.__qualname__} (docstring)": inspect.cleandoc(m.__doc__ or "")}
        texts.update({f"{m.__qualname__}.{name}": field.description or ""
                      for name, field in m.model_fields.items()})
        out += [f"{where}: {hit.group(0)!r}" for where, text in texts.items()
                for hit in TIMING.finditer(text)]
    return out


def test_the_walk_reaches_nested_models():
    names = {m.__qualname__ for m in config_models()}
    # dict values, list items, Optionals, a subclass from another package, and a model
    # nested three levels down inside an Optional
    assert {"ModelConfig", "RouteConfig", "ApiKeyEntry", "KeyLimits", "IndexConfig",
            "ChunkingConfig", "SearchSettings", "RerankSettings",
            "JsonSchemaFormat", "SamplingDefaults"} <= names


def test_every_config_field_has_a_description():
    missing = undescribed(config_models())
    assert not missing, "config fields without a description:\n" + "\n".join(missing)


def test_no_description_quotes_a_timing():
    found = timings(config_models())
    assert not found, ("config descriptions quoting timings (state what the field does; "
                       "measured figures belong in docs/):\n" + "\n".join(found))


def test_the_json_schema_carries_the_descriptions():
    schema = LoragConfig.model_json_schema()
    nodes = [schema, *schema.get("$defs", {}).values()]
    missing = [f"{node.get('title')}.{name}" for node in nodes
               for name, prop in node.get("properties", {}).items()
               if not prop.get("description")]
    assert not missing, missing


def test_the_openapi_body_of_an_index_carries_the_descriptions():
    from retrieval.spec import IndexSpec
    from serving.openapi import body
    from serving.retrieval_api import CreateIndexRequest

    schema = body(CreateIndexRequest)["requestBody"]["content"]["application/json"]["schema"]
    properties = schema["properties"]
    assert "$defs" not in schema and "$ref" not in str(schema)
    assert properties["chunking"]["description"] == \
        CreateIndexRequest.model_fields["chunking"].description
    assert properties["chunking"]["properties"]["size"]["description"]
    # the index's config fields (IndexSpec, shared with config.indexes); not the request's name
    missing = [name for name in IndexSpec.model_fields if not properties[name].get("description")]
    assert not missing, missing


def test_the_checks_fail_on_a_bad_field():
    from pydantic import Field

    from lorag_core.strict import StrictModel

    class Inner(StrictModel):
        bare: int = 0
        timed: float = Field(default=1.0, description="Window; ~0.6 s on this CPU.")
        plain: float = Field(default=1.0, description="Longest wait, in seconds.")

    class Outer(StrictModel):
        items: dict[str, list[Inner | None]] = Field(default_factory=dict, description="x")

    models = config_models(Outer)
    assert Inner in models
    assert undescribed(models) == [f"{Inner.__module__}.{Inner.__qualname__}.bare"]
    assert [t.split(":")[0] for t in timings(models)] == [f"{Inner.__qualname__}.timed"]


def test_the_timing_pattern():
    for text in ("~3 ms a query", "0.6 s on one core", "start-up ~1 min instead of ~2 min",
                 "2.5 us each", "takes 6 seconds", "run bfloat16 10x slower", "1,5 s"):
        assert TIMING.search(text), text
    for text in ("in seconds", "in milliseconds", "at most 64 characters", "Up to 4 strings",
                 "1 means none", "1: one search", "SmolLM2-135M", "1.5 GiB", "3 hops",
                 "request_timeout_s", "20k real text chunks"):
        assert not TIMING.search(text), text
