"""The ingress logic: resolve the route, call the LLM deployment, answer in OpenAI's shape.

`OpenAIService` is a plain object holding the config and one deployment
handle per base model; the FastAPI routes in `serving.ingress` delegate here.
A handle needs only ``handle.options(stream=True).<method>.remote(request, adapter,
prompt)`` returning an async iterator (`serving.llm_server`'s contract; `prompt` is a
`serving.route_prompt.RoutePrompt` or None), so tests can pass a fake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from retrieval.errors import index_not_found
from serving import rag
from serving.access import request_id_of
from serving.auth import ALL, Grants
from serving.config import LoragConfig, RouteConfig, llm_deployment_name
from serving.envelope import unwrap
from serving.errors import (
    REQUEST_ID_HEADER,
    GatewayTimeoutError,
    InvalidRequestError,
    LoragError,
    ModelNotFoundError,
    ServiceUnavailableError,
    from_domain_error,
    from_internal_error,
)
from serving.metrics import (
    Generation,
    IngressMetrics,
    UsageMeter,
    force_usage,
    grounding_verdicts,
    usage_tokens,
    usage_total,
)
from serving.protocol import (
    decode_json_body,
    parse_chat_request,
    parse_completion_request,
    prompt_logprobs_error,
    read_body,
)
from serving.route_prompt import RoutePrompt
from serving.route_settings import RouteLimitError, with_json_layout
from serving.sources import RouteSources
from serving.streaming import DONE, event

__all__ = ["HEALTH_TIMEOUT_S", "OpenAIService"]

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 10.0


def _check_index_override(route: RouteConfig | None, index: Any) -> None:
    """The request's `index` field (docs/routes.md): a string, on a retrieval route."""
    if not isinstance(index, str) or not index:
        raise InvalidRequestError("'index' must be the name of an index (a string).",
                                  param="index", code="invalid_type")
    if route is None or route.retrieval is None:
        name = route.name if route is not None else "this model"
        raise InvalidRequestError(
            f"'index' is only allowed on routes with retrieval; {name!r} retrieves nothing.",
            param="index", code="unsupported_parameter")


def _route_limits(route: RouteConfig, body: dict[str, Any]) -> dict[str, Any]:
    try:
        return route.limits.check(body)
    except RouteLimitError as err:
        raise InvalidRequestError(str(err), param=err.param, code="max_tokens_exceeded") from None


class OpenAIService:
    def __init__(self, config: LoragConfig, llm_handles: dict[str, Any],
                 retriever: Any | None = None, adapters: Any | None = None,
                 adapter_registry: Any | None = None, access: Any | None = None):
        self.config = config
        self.access = access  # serving.access.Access: charges each key for its tokens
        self.llm = llm_handles
        self.adapters = adapters  # AdaptersAPI: resolves adapter names to versions
        # Every deployment /health asks: each answers `ping` once it is ready.
        self.probes = {f"llm:{k}": h for k, h in llm_handles.items()}
        if retriever is not None:
            self.probes["retriever"] = retriever
        if adapter_registry is not None:
            self.probes["adapter_registry"] = adapter_registry
        self.metrics = IngressMetrics()
        self.sources = RouteSources(retriever, self.metrics) if retriever is not None else None
        self.created = int(time.time())

    # -- generation ---------------------------------------------------------

    async def chat(self, raw: Request) -> Response:
        return await self._generate(raw, "chat", parse_chat_request)

    async def completions(self, raw: Request) -> Response:
        return await self._generate(raw, "completions", parse_completion_request)

    async def _generate(self, raw: Request, endpoint: str, parse) -> Response:
        gen = Generation(endpoint, time.perf_counter(),
                         key=getattr(raw.state, "api_key", None),
                         deadline=asyncio.get_running_loop().time()
                         + self.config.server.ingress.request_timeout_s)
        request_id = request_id_of(raw)
        queued = None
        grants = gen.key.grants if gen.key is not None else ALL
        try:
            request, route, index = await self._parse_body(raw, parse, grants)
            handle, adapter, base = await self._target(route, request.model or "", grants)
            gen.route = gen.known = request.model
            gen.adapter = adapter["name"] if adapter else ""
            queued = self.metrics.queued.labels(gen.known)
            queued.inc()
            if index is not None:
                _check_index_override(route, index)
                if not grants.reads_index(index):  # as if it did not exist
                    raise from_domain_error(index_not_found(index))
            # refused before the search it would otherwise cost
            if err := prompt_logprobs_error(request, base,
                                            self.config.models[base].engine.enable_lora):
                raise err
            request.request_id = request_id
            gen.strip_usage = force_usage(request)
            prompt = (await self._route_prompt(route, request, index, endpoint, grants.filter)
                      if route else None)
            if prompt is not None and prompt.hits == []:
                return self._no_context(route, request, request_id, gen)
            upstream = getattr(handle.options(stream=True), endpoint)
            stream = upstream.remote(request, adapter, prompt)
            async with asyncio.timeout_at(gen.deadline):
                first = await anext(stream)
        except TimeoutError:
            stream.cancel()
            err = GatewayTimeoutError(
                f"No answer within the server's request timeout "
                f"({self.config.server.ingress.request_timeout_s:g}s); retry later.",
                code="timeout")
            self.metrics.ended(gen, err.status, err.code)
            raise err from None
        except LoragError as err:
            self.metrics.ended(gen, err.status, err.code)
            raise
        except StopAsyncIteration:
            self.metrics.ended(gen, 500)
            raise LoragError(f"The engine returned nothing for request {request_id}.") from None
        except Exception as exc:  # a full queue, a lost replica, a timeout: 503 / 504
            err = from_internal_error(exc)
            if err is None:
                self.metrics.ended(gen, 500)
                raise
            self.metrics.ended(gen, err.status, err.code)
            raise err from None
        finally:
            if queued is not None:
                queued.dec()
        return self._first_reply(first, stream, gen, request_id)

    async def _parse_body(self, raw: Request, parse, grants: Grants = ALL
                          ) -> tuple[Any, RouteConfig | None, Any]:
        """The request parsed by `parse` after the route's request defaults and limits
        apply, the route its `model` names (None unless it names a configured route the
        key may use) and lorag's `index` extension (None when absent)."""
        limit = self.config.server.ingress.max_request_bytes
        body = decode_json_body(await read_body(raw, limit), limit)
        index = body.pop("index", None)  # lorag's extension, not a vLLM field
        route = self.config.route(body.get("model")) if isinstance(
            body.get("model"), str) else None
        if route is not None and not grants.uses_route(route.name):
            raise self._model_not_found(route.name, grants)
        if route is not None:
            body = _route_limits(route, route.request_defaults(body))
        return parse(with_json_layout(body)), route, index

    async def _route_prompt(self, route: RouteConfig, request: Any, index: str | None,
                            endpoint: str, owner: dict[str, Any] | None = None
                            ) -> RoutePrompt | None:
        """What the route adds to the request (None: nothing): its template and sources
        (`serving.sources`, searched under `owner`, the API key's filter), its prompt cap
        and its answer format."""
        fields: dict[str, Any] = {}
        if route.retrieval or route.template.system:
            if endpoint != "chat":
                if route.retrieval:
                    raise InvalidRequestError(
                        f"route {route.name!r} answers from retrieved sources; use "
                        "/v1/chat/completions.", param="model", code="unsupported_endpoint")
            else:
                fields["template"] = route.template
        if "template" in fields and (settings := route.retrieval):
            fields["hits"], fields["index"] = await self.sources.find(route, request, index,
                                                                      owner)
            fields.update(max_context_tokens=settings.max_context_tokens,
                          add_markers=settings.add_markers,
                          check_grounding=settings.check_grounding,
                          fix_citations=settings.fix_citations)
        if route.limits.max_prompt_tokens:  # counted by the LLM replica (its tokenizer)
            fields["max_prompt_tokens"] = route.limits.max_prompt_tokens
        if route.answer_format == "json":  # a fenced JSON answer is unwrapped there
            fields["answer_format"] = "json"
        return RoutePrompt(**fields) if fields else None

    def _first_reply(self, first: Any, stream: Any, gen: Generation, request_id: str
                     ) -> Response:
        """The response from the engine's first item: a reply (`serving.envelope`: a
        whole answer or an error, nothing follows), else the first SSE chunk of a stream
        to relay."""
        headers = {REQUEST_ID_HEADER: request_id}
        if isinstance(first, dict):
            try:
                first = unwrap(first)
            except LoragError as err:
                self.metrics.ended(gen, err.status, err.code)
                raise
            self.metrics.first_token.labels(gen.known, gen.adapter).observe(
                time.perf_counter() - gen.started)
            self.metrics.ended(gen, 200, tokens=usage_tokens(first))
            self._count_grounding(gen, grounding_verdicts(first))
            self._charge(gen, usage_total(first))
            return JSONResponse(first, headers=headers)
        elapsed = time.perf_counter() - gen.started
        self.metrics.ttft.labels(gen.route, gen.endpoint).observe(elapsed)
        self.metrics.first_token.labels(gen.known, gen.adapter).observe(elapsed)
        return StreamingResponse(
            self._relay(first, stream, gen),
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache"},
        )

    def _no_context(self, route: RouteConfig, request: Any, request_id: str,
                    gen: Generation) -> Response:
        """No chunk passed min_score: answer the route's no-context text, no generation."""
        self.metrics.no_context.labels(route.name).inc()
        self.metrics.ended(gen, 200)
        if gen.strip_usage:  # the forced usage event is for our metrics only
            request.stream_options = None
        text = route.template.no_context_answer
        headers = {REQUEST_ID_HEADER: request_id}
        if not request.stream:
            return JSONResponse(rag.no_context_response(request, route.name, text),
                                headers=headers)
        return StreamingResponse(iter(list(rag.no_context_stream(request, route.name, text))),
                                 media_type="text/event-stream",
                                 headers={**headers, "Cache-Control": "no-cache"})

    async def _relay(self, first: str, stream: Any, gen: Generation) -> AsyncIterator[str]:
        gauge = self.metrics.in_flight.labels(gen.route, gen.endpoint)
        gauge.inc()
        meter = UsageMeter(strip=gen.strip_usage)
        status = 200
        try:
            yield meter(first)
            async with asyncio.timeout_at(gen.deadline):  # one timer, not one per chunk
                async for chunk in stream:
                    if chunk := meter(chunk):
                        yield chunk
        except asyncio.CancelledError:
            status = 499  # the client went away; cancel the engine request too
            stream.cancel()
            raise
        except Exception as exc:
            # The headers are out: end the stream with an error event, as vLLM does.
            err = from_internal_error(exc) if not isinstance(exc, TimeoutError) else \
                GatewayTimeoutError("The answer did not finish within the server's request "
                                    "timeout.", code="timeout")
            if err is None:
                status = 500
                logger.exception("stream of request %s broke", gen.route)
                err = LoragError("The stream broke inside the server.")
            else:
                status = int(err.status)
            stream.cancel()
            yield event(err.to_body()) + DONE
        finally:
            gauge.dec()
            self.metrics.ended(gen, status, tokens=meter.tokens)
            self._count_grounding(gen, meter.verdicts)
            self._charge(gen, meter.total)

    def _count_grounding(self, gen: Generation, verdicts: list[str]) -> None:
        for verdict in verdicts:
            self.metrics.grounding.labels(gen.route, verdict).inc()

    def _charge(self, gen: Generation, tokens: int) -> None:
        if self.access is not None:
            self.access.charge(gen.key, tokens)

    def _model_not_found(self, model: str, grants: Grants) -> ModelNotFoundError:
        """The same 404 for a model that does not exist and one the key may not use; it
        names only what the key may use."""
        return ModelNotFoundError(model, [r.name for r in self.config.routes
                                          if grants.uses_route(r.name)] +
                                  ["the adapters in GET /v1/adapters"])

    async def _target(self, route: RouteConfig | None, model: str, grants: Grants = ALL
                      ) -> tuple[Any, dict[str, Any] | None, str]:
        """The LLM handle for `model` (`route`, or else a loaded adapter the key may
        use), the adapter record and the base model's key."""
        if route is not None:
            handle = self.llm[self.config.llm_key(route)]
            if route.adapter is None:
                return handle, None, route.model
            adapter = await self.adapters.resolve(route.adapter)
            if adapter is None:
                raise ServiceUnavailableError(
                    f"route {route.name!r} uses adapter {route.adapter!r}, which is not "
                    "registered; POST /v1/adapters to load it.", code="adapter_unavailable")
        else:
            adapter = (await self.adapters.resolve(model)
                       if self.adapters is not None and grants.uses_adapter(model) else None)
            if adapter is None:
                raise self._model_not_found(model, grants)
            handle = self.llm[adapter["base_model"]]
        # Ray Serve routes to replicas that already hold this exact version.
        return (handle.options(multiplexed_model_id=adapter["served_id"]), adapter,
                adapter["base_model"])

    # -- models, health, metrics -------------------------------------------

    async def list_models(self, grants: Grants = ALL) -> dict[str, Any]:
        """Routes, embedding models and loaded adapters: those the key may use."""
        data = []
        for route in self.config.routes:
            if not grants.uses_route(route.name):
                continue
            model = self.config.models[route.model]
            data.append({
                "id": route.name,
                "object": "model",
                "created": self.created,
                "owned_by": "lorag",
                "root": model.source,
                "parent": None,
                "max_model_len": model.engine.max_model_len,
                "lorag": self.route_info(route),
            })
        for name, source in self.config.retrieval.embedding_models.items():
            data.append({"id": name, "object": "model", "created": self.created,
                         "owned_by": "lorag", "root": source, "parent": None,
                         "lorag": {"kind": "embedding"}})
        for adapter in await self.adapters.list_loaded(grants) if self.adapters else []:
            data.append({"id": adapter["id"], "object": "model",
                         "created": int(adapter["created_at"]), "owned_by": "lorag",
                         "root": adapter["source"], "parent": adapter["base_model"],
                         "lorag": {"kind": "adapter", "base_model": adapter["base_model"],
                                   "version": adapter["version"]}})
        return {"object": "list", "data": data}

    def route_info(self, route: RouteConfig) -> dict[str, Any]:
        """What a route combines: base model, adapter, retrieval, and the deployment."""
        return {
            "kind": "route", "description": route.description, "base_model": route.model,
            "adapter": route.adapter,
            "retrieval": route.retrieval.model_dump() if route.retrieval else None,
            "sampling": route.sampling.model_dump(exclude_none=True),
            "response_format": (route.response_format.model_dump(
                mode="json", exclude_none=True, by_alias=True)
                if route.response_format else None),
            "answer_format": route.answer_format,
            "deployment": llm_deployment_name(self.config.llm_key(route)),
        }

    async def deployments(self) -> dict[str, Any]:
        """Ray Serve's view of this application (the controller's serve details, the
        data behind the dashboard's /api/serve/applications/): each deployment's
        status, replicas, target scaling, resources, and the routes it serves."""
        from ray.serve.context import _get_global_client

        details = await asyncio.to_thread(_get_global_client().get_serve_details)
        app = details.get("applications", {}).get(self.config.server.app_name)
        if app is None:
            raise ServiceUnavailableError("the Ray Serve application is not running.")
        serves: dict[str, list[str]] = {}
        for route in self.config.routes:
            serves.setdefault(self.route_info(route)["deployment"], []).append(route.name)
        data = []
        for name, dep in sorted(app["deployments"].items()):
            cfg = dep.get("deployment_config", {})
            states: dict[str, int] = {}
            for replica in dep.get("replicas", []):
                states[replica["state"]] = states.get(replica["state"], 0) + 1
            data.append({
                "name": name, "status": dep["status"], "replicas": states,
                "target_num_replicas": dep.get("target_num_replicas"),
                "num_replicas": cfg.get("num_replicas"),
                "autoscaling_config": cfg.get("autoscaling_config"),
                "ray_actor_options": {k: v for k, v in cfg.get("ray_actor_options", {}).items()
                                      if k in ("num_cpus", "num_gpus")},
                "routes": serves.get(name, []),
            })
        return {"object": "list", "application": self.config.server.app_name,
                "status": app["status"], "data": data}

    async def health(self) -> dict[str, Any]:
        async def probe(key: str) -> tuple[str, str]:
            try:
                await asyncio.wait_for(self.probes[key].ping.remote(), HEALTH_TIMEOUT_S)
                return key, "ok"
            except Exception as err:  # any failure means not ready
                logger.warning("health probe of %s failed: %r", key, err)
                return key, "unavailable"

        results = dict(await asyncio.gather(*(probe(k) for k in self.probes)))
        if any(v != "ok" for v in results.values()):
            raise ServiceUnavailableError(
                "Not ready: " + ", ".join(f"{k}={v}" for k, v in results.items())
            )
        return {"status": "ok", "deployments": results}

    async def metrics_text(self) -> bytes:
        async def engine_text(key: str) -> str:
            try:
                return await asyncio.wait_for(self.llm[key].metrics_text.remote(), 10)
            except Exception as err:
                logger.warning("could not read engine metrics of %s: %r", key, err)
                return ""

        texts = await asyncio.gather(*(engine_text(k) for k in self.llm))
        return self.metrics.render(texts)
