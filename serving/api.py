"""The ingress logic: resolve the route, call the LLM deployment, answer in OpenAI's shape.

`OpenAIService` is a plain object holding the config and one deployment
handle per base model; the FastAPI routes in `serving.ingress` delegate here.
A handle needs only ``handle.options(stream=True).<method>.remote(request)``
returning an async iterator, so tests can pass a fake.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from serving.config import LoragConfig
from serving.errors import (
    REQUEST_ID_HEADER,
    LoragError,
    ModelNotFoundError,
    ServiceUnavailableError,
    error_from_wire,
    from_vllm_error,
)
from serving.metrics import IngressMetrics
from serving.protocol import decode_json_body, parse_chat_request, parse_completion_request

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 10.0


class OpenAIService:
    def __init__(self, config: LoragConfig, llm_handles: dict[str, Any],
                 retriever: Any | None = None, adapters: Any | None = None,
                 adapter_registry: Any | None = None):
        self.config = config
        self.llm = llm_handles
        self.adapters = adapters  # AdaptersAPI: resolves adapter names to versions
        # Every deployment /health asks: each answers `ping` once it is ready.
        self.probes = {f"llm:{k}": h for k, h in llm_handles.items()}
        if retriever is not None:
            self.probes["retriever"] = retriever
        if adapter_registry is not None:
            self.probes["adapter_registry"] = adapter_registry
        self.metrics = IngressMetrics()
        self.created = int(time.time())

    # -- generation ---------------------------------------------------------

    async def chat(self, raw: Request) -> Response:
        return await self._generate(raw, "chat", parse_chat_request, "messages")

    async def completions(self, raw: Request) -> Response:
        return await self._generate(raw, "completions", parse_completion_request, "prompt")

    async def _generate(self, raw: Request, endpoint: str, parse, prompt_param: str) -> Response:
        started = time.perf_counter()
        request_id = raw.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        raw.state.request_id = request_id
        route_name = "-"
        try:
            body = decode_json_body(await raw.body(), self.config.server.ingress.max_request_bytes)
            request = parse(body)
            handle, adapter = await self._target(request.model or "")
            route_name = request.model
            request.request_id = request_id
            upstream = getattr(handle.options(stream=True), endpoint)
            stream = upstream.remote(request, adapter)
            first = await anext(stream)
        except LoragError as err:
            self.metrics.finished(route_name, endpoint, err.status, started)
            raise
        except StopAsyncIteration:
            self.metrics.finished(route_name, endpoint, 500, started)
            raise LoragError(f"The engine returned nothing for request {request_id}.") from None
        headers = {REQUEST_ID_HEADER: request_id}
        if isinstance(first, dict):  # a whole response or an error: nothing follows
            if "lorag_error" in first:
                err = error_from_wire(first["lorag_error"])
                self.metrics.finished(route_name, endpoint, err.status, started)
                raise err
            if "error" in first:
                err = from_vllm_error(first["error"], prompt_param)
                self.metrics.finished(route_name, endpoint, err.status, started)
                raise err
            self.metrics.finished(route_name, endpoint, 200, started)
            return JSONResponse(first, headers=headers)
        self.metrics.ttft.labels(route_name, endpoint).observe(time.perf_counter() - started)
        return StreamingResponse(
            self._relay(first, stream, route_name, endpoint, started),
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache"},
        )

    async def _relay(
        self, first: str, stream: Any, route: str, endpoint: str, started: float
    ) -> AsyncIterator[str]:
        gauge = self.metrics.in_flight.labels(route, endpoint)
        gauge.inc()
        status = 200
        try:
            yield first
            async for chunk in stream:
                yield chunk
        except asyncio.CancelledError:
            status = 499  # the client went away; cancel the engine request too
            stream.cancel()
            raise
        finally:
            gauge.dec()
            self.metrics.finished(route, endpoint, status, started)

    async def _target(self, model: str) -> tuple[Any, dict[str, Any] | None]:
        """The LLM handle for `model` (a route or a loaded adapter) and the adapter record."""
        route = self.config.route(model)
        if route is not None:
            return self.llm[route.model], None
        adapter = await self.adapters.resolve(model) if self.adapters is not None else None
        if adapter is None:
            raise ModelNotFoundError(model, [r.name for r in self.config.routes] +
                                     ["the adapters in GET /v1/adapters"])
        # Ray Serve routes to replicas that already hold this exact version.
        handle = self.llm[adapter["base_model"]].options(
            multiplexed_model_id=adapter["served_id"])
        return handle, adapter

    # -- models, health, metrics -------------------------------------------

    async def list_models(self) -> dict[str, Any]:
        data = []
        for route in self.config.routes:
            model = self.config.models[route.model]
            data.append({
                "id": route.name,
                "object": "model",
                "created": self.created,
                "owned_by": "lorag",
                "root": model.source,
                "parent": None,
                "max_model_len": model.engine.max_model_len,
                "lorag": {"kind": "chat", "base_model": route.model,
                          "description": route.description},
            })
        for name, source in self.config.retrieval.embedding_models.items():
            data.append({"id": name, "object": "model", "created": self.created,
                         "owned_by": "lorag", "root": source, "parent": None,
                         "lorag": {"kind": "embedding"}})
        for adapter in await self.adapters.list_loaded() if self.adapters else []:
            data.append({"id": adapter["id"], "object": "model",
                         "created": int(adapter["created_at"]), "owned_by": "lorag",
                         "root": adapter["source"], "parent": adapter["base_model"],
                         "lorag": {"kind": "adapter", "base_model": adapter["base_model"],
                                   "version": adapter["version"]}})
        return {"object": "list", "data": data}

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
