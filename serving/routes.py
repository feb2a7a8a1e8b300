"""A route: what a client names as `model`, and the checks that tie it to the rest of
the config (its model, adapter, index, rerank model, limits and answer format).

`serving.config.LoragConfig` runs `check_route` on each route when the config loads;
the route's settings themselves (sampling, prompt template, retrieval, limits, format)
are in `serving.route_settings`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lorag_core.strict import StrictModel as _Strict
from serving.model_config import DeploymentConfig
from serving.route_settings import (
    PROMPT_FAMILIES,
    PromptTemplate,
    ResponseFormat,
    RetrievalSettings,
    RouteLimits,
    SamplingDefaults,
    family_template,
    validate_json,
)

__all__ = ["NAME_RE", "RouteConfig", "check_route"]

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class RouteConfig(_Strict):
    """What a client names as `model`: a base model, optionally an adapter and retrieval."""

    name: str = Field(pattern=NAME_RE, description="The OpenAI `model` id of this route.")
    model: str = Field(description="Key of the base model in `models`.")
    description: str = Field(default="", description="Shown in GET /v1/models.")
    adapter: str | None = Field(
        default=None, description="Key in `adapters`: the LoRA this route answers with (its "
        "active version; POST /v1/adapters swaps it at runtime).")
    retrieval: RetrievalSettings | None = Field(
        default=None, description="Search an index and answer from numbered, cited sources.")
    template: PromptTemplate = Field(
        default_factory=PromptTemplate,
        description="How the conversation (and, on retrieval routes, its sources) becomes the "
        "model's prompt; fields left unset on a retrieval route come from the model's "
        "prompt_family.")
    sampling: SamplingDefaults = Field(
        default_factory=SamplingDefaults,
        description="Sampling parameters used when a request does not set them.")
    limits: RouteLimits = Field(default_factory=RouteLimits,
                                description="Caps on max_tokens and prompt length.")
    response_format: ResponseFormat | None = Field(
        default=None,
        description="OpenAI response_format for requests that set none ({type: json_object} "
        "or {type: json_schema, json_schema: {name, schema, strict}}): the engine makes the "
        "answer follow it (vLLM structured outputs), streamed or not. A request's own "
        "response_format (even {type: text}) or structured_outputs wins.")
    answer_format: Literal["text", "json"] = Field(
        default="text",
        description="json: the answer is one JSON value. A non-streamed answer wrapped in a "
        "Markdown code fence (```json ... ```, with or without prose around it) is "
        "unwrapped to the JSON inside when that parses (an answer that still is not JSON is "
        "left as it is); no source marker is appended (retrieval.add_markers). A stream is "
        "sent as it is made and never rewritten: pair it with a JSON response_format so "
        "that the engine keeps streamed answers clean. Requests with a json_object / "
        "json_schema response_format are unwrapped the same way on any route.")
    deployment: DeploymentConfig | None = Field(
        default=None,
        description="Give this route its own LLM deployment (LLM:<model>:<route>) with these "
        "replicas/autoscaling, so that it scales without scaling the others; null shares "
        "the model's deployment.")

    def request_defaults(self, body: dict[str, Any]) -> dict[str, Any]:
        """A request body with what it leaves unset filled from the route: sampling
        parameters, and response_format (when it asks for no format of its own)."""
        body = self.sampling.apply(body)
        return self.response_format.apply(body) if self.response_format else body



def check_route(config: Any, where: str, route: RouteConfig) -> None:
    """A route against the rest of `config` (the `serving.config.LoragConfig` being
    built; `where`: the route's path, ``routes.<i>``): the
    model, adapter, index and rerank model it names exist and fit together, and its
    limits and no-context answer suit its model and format. Fills the retrieval
    template's unset fields from the model's prompt family."""
    def known(keys) -> str:
        return ", ".join(sorted(keys)) or "none"

    if route.model not in config.models:
        raise ValueError(f"{where}.model: route {route.name!r} names unknown model "
                         f"{route.model!r} (known: {known(config.models)})")
    if route.adapter is not None:
        if route.adapter not in config.adapters:
            raise ValueError(f"{where}.adapter: route {route.name!r} names unknown adapter "
                             f"{route.adapter!r} (known: {known(config.adapters)})")
        base = config.adapter_base(route.adapter, config.adapters[route.adapter].base_model)
        if base != route.model:
            raise ValueError(f"{where}.adapter: route {route.name!r} runs model "
                             f"{route.model!r} but adapter {route.adapter!r} is for "
                             f"{base!r}")
    family = config.models[route.model].resolved_prompt_family()
    if family not in PROMPT_FAMILIES:
        raise ValueError(f"models.{route.model}.prompt_family: unknown family {family!r} "
                         f"(known: {known(PROMPT_FAMILIES)})")
    if route.retrieval is not None:  # the families' defaults are retrieval prompts
        # Routes are frozen once built; this is part of building them.
        object.__setattr__(route, "template", family_template(route.template, family))
    if route.retrieval is not None and route.retrieval.index not in config.indexes:
        raise ValueError(f"{where}.retrieval.index: route {route.name!r} names unknown "
                         f"index {route.retrieval.index!r} (known: {known(config.indexes)})")
    rerank = route.retrieval.rerank if route.retrieval is not None else None
    if rerank is not None and rerank.model not in config.retrieval.rerank_models:
        raise ValueError(f"{where}.retrieval.rerank.model: route {route.name!r} names "
                         f"unknown rerank model {rerank.model!r} (known: "
                         f"{known(config.retrieval.rerank_models)})")
    cap, default = route.limits.max_tokens, route.sampling.max_tokens
    if cap is not None and default is not None and default > cap:
        raise ValueError(f"{where}.sampling.max_tokens: route {route.name!r} defaults to "
                         f"{default} tokens but limits.max_tokens is {cap}")
    limit = config.models[route.model].engine.max_model_len
    if route.retrieval is not None and route.retrieval.max_context_tokens >= limit:
        raise ValueError(f"{where}.retrieval.max_context_tokens: route {route.name!r} "
                         f"allows {route.retrieval.max_context_tokens} source tokens but "
                         f"model {route.model!r} has max_model_len {limit}")
    json_answer = route.answer_format == "json" or (
        route.response_format is not None and route.response_format.is_json)
    if route.retrieval is not None and json_answer:
        fmt, schema = route.response_format, None  # answer_format json: any JSON value
        if fmt is not None and fmt.json_schema is not None:
            schema = fmt.json_schema.schema_
        elif fmt is not None and fmt.type == "json_object":
            schema = {"type": "object"}
        if (why := validate_json(route.template.no_context_answer, schema)) is not None:
            raise ValueError(f"{where}.template.no_context_answer: route {route.name!r} "
                             f"answers JSON but its no-context answer is {why}")
