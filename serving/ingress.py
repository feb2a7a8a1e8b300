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
from serving.errors import LoragError, from_pydantic_error, register_exception_handlers
from serving.llm_server import LLMServer
from serving.retrieval_api import RetrievalAPI, error_to_wire

app = FastAPI(title="lorag", description="OpenAI-compatible RAG + LoRA inference server")
register_exception_handlers(app)


@serve.ingress(app)
class Ingress:
    """The OpenAI-compatible HTTP surface; stateless, scale it freely."""

    def __init__(self, config: dict[str, Any], llm_handles: dict[str, Any], retriever: Any):
        cfg = LoragConfig.model_validate(config)
        self.service = OpenAIService(cfg, llm_handles, retriever)
        self.retrieval = RetrievalAPI(cfg, retriever)

    @app.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        return await self.service.chat(request)

    @app.post("/v1/completions")
    async def completions(self, request: Request) -> Response:
        return await self.service.completions(request)

    @app.post("/v1/embeddings")
    async def embeddings(self, request: Request) -> dict[str, Any]:
        return await self.retrieval.embeddings(request)

    @app.post("/v1/indexes", status_code=201)
    async def create_index(self, request: Request) -> dict[str, Any]:
        return await self.retrieval.create_index(request)

    @app.get("/v1/indexes")
    async def list_indexes(self) -> dict[str, Any]:
        return await self.retrieval.list_indexes()

    @app.get("/v1/indexes/{name}")
    async def get_index(self, name: str) -> dict[str, Any]:
        return await self.retrieval.get_index(name)

    @app.delete("/v1/indexes/{name}")
    async def delete_index(self, name: str) -> dict[str, Any]:
        return await self.retrieval.delete_index(name)

    @app.post("/v1/indexes/{name}/documents")
    async def add_documents(self, name: str, request: Request) -> dict[str, Any]:
        return await self.retrieval.add_documents(name, request)

    @app.post("/v1/indexes/{name}/files")
    async def upload_files(self, name: str, request: Request) -> dict[str, Any]:
        return await self.retrieval.upload_files(name, request)

    @app.get("/v1/indexes/{name}/documents/{doc_id}")
    async def get_document(self, name: str, doc_id: str) -> dict[str, Any]:
        return await self.retrieval.get_document(name, doc_id)

    @app.delete("/v1/indexes/{name}/documents/{doc_id}")
    async def delete_document(self, name: str, doc_id: str) -> dict[str, Any]:
        return await self.retrieval.delete_document(name, doc_id)

    @app.post("/v1/indexes/{name}/search")
    async def search(self, name: str, request: Request) -> dict[str, Any]:
        return await self.retrieval.search(name, request)

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


class RetrieverDeployment:
    """Embedders and FAISS indexes over the shared data directory."""

    METHODS = frozenset({"create_index", "list_indexes", "index_stats", "delete_index",
                         "add_documents", "get_document", "delete_document", "search", "embed"})

    async def __init__(self, config: dict[str, Any]):
        from retrieval.service import RetrieverService

        cfg = LoragConfig.model_validate(config)
        self.service = RetrieverService(
            cfg.retrieval.data_dir,
            {name: spec.model_dump() for name, spec in cfg.indexes.items()},
            cfg.retrieval.embedding_models)
        await self.service.start()

    async def ping(self) -> bool:
        return True

    async def call(self, method: str, *args: Any) -> dict[str, Any]:
        """Run one service method; typed errors come back as data, not exceptions."""
        from pydantic import ValidationError

        if method not in self.METHODS:
            raise ValueError(f"unknown retriever method {method}")
        try:
            return {"result": await getattr(self.service, method)(*args)}
        except LoragError as err:
            return {"error": error_to_wire(err)}
        except ValidationError as err:
            return {"error": error_to_wire(from_pydantic_error(err))}

    def __del__(self) -> None:
        if hasattr(self, "service"):
            self.service.close()
