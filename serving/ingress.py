"""Ray Serve deployments: the FastAPI ingress and the LLM deployment.

Both are thin: the ingress delegates to `OpenAIService`, the LLM deployment to
`LLMServer`. `serving.app.build_app` binds them from the config.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from ray import serve

from serving.api import OpenAIService
from serving.config import LoragConfig, ModelConfig
from serving.errors import register_exception_handlers
from serving.llm_server import LLMServer

app = FastAPI(title="lorag", description="OpenAI-compatible RAG + LoRA inference server")
register_exception_handlers(app)


@serve.ingress(app)
class Ingress:
    """The OpenAI-compatible HTTP surface; stateless, scale it freely."""

    def __init__(self, config: dict[str, Any], llm_handles: dict[str, Any]):
        self.service = OpenAIService(LoragConfig.model_validate(config), llm_handles)

    @app.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        return await self.service.chat(request)

    @app.post("/v1/completions")
    async def completions(self, request: Request) -> Response:
        return await self.service.completions(request)

    @app.get("/v1/models")
    async def models(self) -> dict[str, Any]:
        return self.service.list_models()

    @app.get("/health")
    async def health(self) -> dict[str, Any]:
        return await self.service.health()

    @app.get("/metrics")
    async def metrics(self) -> Response:
        body = await self.service.metrics_text()
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


class LLMDeployment:
    """One vLLM engine per replica; requests arrive through deployment handles."""

    async def __init__(self, model_key: str, config: dict[str, Any], served_names: list[str]):
        self.server = LLMServer(model_key, ModelConfig.model_validate(config), served_names)
        await self.server.start()

    async def chat(self, request: Any) -> AsyncGenerator[dict | str, None]:
        async for item in self.server.chat(request):
            yield item

    async def completions(self, request: Any) -> AsyncGenerator[dict | str, None]:
        async for item in self.server.completions(request):
            yield item

    async def ping(self) -> bool:
        await self.server.check_health()
        return True

    async def check_health(self) -> None:
        await self.server.check_health()

    def metrics_text(self) -> str:
        return self.server.metrics_text()

    def __del__(self) -> None:
        # Ray Serve calls this on graceful shutdown: stop the engine's processes.
        if hasattr(self, "server"):
            self.server.close()
