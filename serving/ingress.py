"""Ray Serve deployments: the FastAPI ingress and the LLM deployment.

Both are thin: the ingress delegates to `OpenAIService`, the LLM deployment to
`LLMServer`. `serving.app.build_app` binds them from the config.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from ray import serve

from lorag_core.data_dir import replica_dir
from lorag_core.errors import DomainError
from serving.adapters_api import AdaptersAPI, LoadAdapterRequest
from serving.api import OpenAIService
from serving.audit import AuditLog
from serving.access import Access, RateLimiterDeployment, grants_of
from serving.auth import KeyStore
from serving.config import LoragConfig, ModelConfig
from serving.envelope import failed, ok, unwrap
from serving.errors import (
    LoragError,
    ServiceUnavailableError,
    from_pydantic_error,
    register_exception_handlers,
)
from serving.llm_server import LLMServer
from serving.openapi import CHAT, COMPLETION, UPLOAD, body
from serving.retrieval_api import (
    AddDocumentsRequest,
    CreateIndexRequest,
    EmbeddingsRequest,
    RetrievalAPI,
    SearchRequest,
)
from serving.route_prompt import RoutePrompt
from serving.streaming import with_model_name


async def _access(request: Request) -> None:
    """Runs before every endpoint: API key, scope, rate limit (serving.auth)."""
    access: Access | None = getattr(request.app.state, "lorag_access", None)
    if access is None:  # never serve unchecked: the replica is not initialised
        raise ServiceUnavailableError("the server is starting; retry later.", retry_after=5)
    request.state.api_key = await access.check(request.method, request.url.path,
                                               request.headers)


def _replica_id() -> str:
    try:
        return serve.get_replica_context().replica_tag
    except Exception:  # outside a Ray Serve replica (tests)
        import os

        return f"pid{os.getpid()}"


app = FastAPI(title="lorag", description="OpenAI-compatible RAG + LoRA inference server",
              dependencies=[Depends(_access)])
register_exception_handlers(app)


@serve.ingress(app)
class Ingress:
    """The OpenAI-compatible HTTP surface; stateless, scale it freely."""

    def __init__(self, config: dict[str, Any], llm_handles: dict[str, Any], retriever: Any,
                 adapter_registry: Any, limiter: Any | None = None,
                 retrieval_writer: Any | None = None):
        cfg = LoragConfig.model_validate(config)
        self.service = OpenAIService(cfg, llm_handles, retriever, None, adapter_registry)
        if retrieval_writer is not None:
            self.service.probes["retrieval_writer"] = retrieval_writer
        audit = AuditLog(cfg.server.audit.path, self.service.metrics.registry, _replica_id())
        self.access = Access(KeyStore.from_config(cfg.server.auth), limiter, audit)
        self.service.access = self.access
        self.service.adapters = self.adapters = AdaptersAPI(cfg, adapter_registry, llm_handles,
                                                            audit)
        app.state.lorag_access = self.access
        self.retrieval = RetrievalAPI(cfg, retriever, audit, retrieval_writer)

    @app.post("/v1/chat/completions", openapi_extra=body(CHAT))
    async def chat_completions(self, request: Request) -> Response:
        return await self.service.chat(request)

    @app.post("/v1/completions", openapi_extra=body(COMPLETION))
    async def completions(self, request: Request) -> Response:
        return await self.service.completions(request)

    @app.post("/v1/embeddings", openapi_extra=body(EmbeddingsRequest))
    async def embeddings(self, request: Request) -> dict[str, Any]:
        return await self.retrieval.embeddings(request)

    @app.post("/v1/indexes", status_code=201, openapi_extra=body(CreateIndexRequest))
    async def create_index(self, request: Request) -> dict[str, Any]:
        return await self.retrieval.create_index(request)

    @app.get("/v1/indexes")
    async def list_indexes(self, request: Request) -> dict[str, Any]:
        return await self.retrieval.list_indexes(request)

    @app.get("/v1/indexes/{name}")
    async def get_index(self, name: str, request: Request) -> dict[str, Any]:
        return await self.retrieval.get_index(request, name)

    @app.delete("/v1/indexes/{name}")
    async def delete_index(self, name: str, request: Request) -> dict[str, Any]:
        return await self.retrieval.delete_index(request, name)

    @app.post("/v1/indexes/{name}/documents", openapi_extra=body(AddDocumentsRequest))
    async def add_documents(self, name: str, request: Request) -> dict[str, Any]:
        return await self.retrieval.add_documents(request, name)

    @app.get("/v1/indexes/{name}/documents")
    async def list_documents(self, name: str, request: Request, limit: int = 100,
                             after: str | None = None) -> dict[str, Any]:
        return await self.retrieval.list_documents(request, name)

    @app.post("/v1/indexes/{name}/files", openapi_extra=UPLOAD)
    async def upload_files(self, name: str, request: Request) -> dict[str, Any]:
        return await self.retrieval.upload_files(request, name)

    # {doc_id:path}: an admin addresses a tenant's document by its stored id,
    # "tenant=a/faq" (retrieval.namespaces); client ids hold no slash
    @app.get("/v1/indexes/{name}/documents/{doc_id:path}")
    async def get_document(self, name: str, doc_id: str, request: Request) -> dict[str, Any]:
        return await self.retrieval.get_document(request, name, doc_id)

    @app.delete("/v1/indexes/{name}/documents/{doc_id:path}")
    async def delete_document(self, name: str, doc_id: str, request: Request
                              ) -> dict[str, Any]:
        return await self.retrieval.delete_document(request, name, doc_id)

    @app.post("/v1/indexes/{name}/search", openapi_extra=body(SearchRequest))
    async def search(self, name: str, request: Request) -> dict[str, Any]:
        return await self.retrieval.search(request, name)

    @app.get("/v1/models")
    async def models(self, request: Request) -> dict[str, Any]:
        return await self.service.list_models(grants_of(request))

    @app.get("/v1/deployments")
    async def deployments(self) -> dict[str, Any]:
        return await self.service.deployments()

    @app.post("/v1/adapters", status_code=201, openapi_extra=body(LoadAdapterRequest))
    async def load_adapter(self, request: Request) -> Response:
        return await self.adapters.load(request)

    @app.get("/v1/adapters")
    async def list_adapters(self, request: Request) -> dict[str, Any]:
        return await self.adapters.list(grants_of(request))

    @app.get("/v1/adapters/{name}")
    async def get_adapter(self, name: str, request: Request) -> dict[str, Any]:
        return await self.adapters.get(name, grants_of(request))

    @app.delete("/v1/adapters/{name}")
    async def unload_adapter(self, name: str, request: Request) -> dict[str, Any]:
        return await self.adapters.unload(request, name)

    @app.get("/health")
    async def health(self) -> dict[str, Any]:
        return await self.service.health()

    @app.get("/metrics")
    async def metrics(self) -> Response:
        body = await self.service.metrics_text()
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


__all__ = ["app", "Ingress", "LLMDeployment", "RetrieverDeployment", "AdapterRegistryDeployment",
           "RateLimiterDeployment"]


class LLMDeployment:
    """One vLLM engine per replica; requests arrive through deployment handles.

    LoRA adapters are multiplexed: the ingress sends an adapter request with
    ``multiplexed_model_id=<name@version>`` and the adapter's registry record;
    Ray Serve prefers replicas that have that version loaded and keeps at most
    `max_cpu_loras` per replica, evicting the least recently used.
    """

    async def __init__(self, model_key: str, config: dict[str, Any], served_names: list[str],
                       server_cls: type = LLMServer):
        cfg = ModelConfig.model_validate(config)
        self.server = server_cls(model_key, cfg, served_names)
        await self.server.start()
        self._records: dict[str, dict[str, Any]] = {}

        async def load_lora_adapter(served_id: str) -> Any:
            return await self.server.adapters.load(self._records[served_id])

        per_replica = cfg.engine.max_cpu_loras or cfg.engine.max_loras
        self._adapter = serve.multiplexed(max_num_models_per_replica=per_replica)(
            load_lora_adapter)

    async def load_adapter(self, record: dict[str, Any]) -> dict[str, Any]:
        """Load a version here now (POST /v1/adapters checks the weights this way)."""
        try:
            await self._get_adapter(record)
        except LoragError as err:
            return failed(err)
        return ok(self.server.adapters.loaded())

    async def _get_adapter(self, record: dict[str, Any]) -> Any:
        if self.server.adapters is None:
            raise LoragError("this model does not serve adapters (engine.enable_lora).")
        self._records[record["served_id"]] = record
        return await self._adapter(record["served_id"])

    async def chat(self, request: Any, adapter: dict[str, Any] | None = None,
                   prompt: RoutePrompt | None = None) -> AsyncGenerator[dict | str, None]:
        """`prompt`: what the route adds (`serving.route_prompt`)."""
        def create(req: Any) -> Any:
            return self.server.chat(req, prompt)

        async for item in self._generate(create, request, adapter):
            yield item

    async def completions(self, request: Any, adapter: dict[str, Any] | None = None,
                          prompt: RoutePrompt | None = None
                          ) -> AsyncGenerator[dict | str, None]:
        """`prompt`: the route's prompt cap and answer format only."""
        def create(req: Any) -> Any:
            return self.server.completions(req, prompt)

        async for item in self._generate(create, request, adapter):
            yield item

    async def _generate(self, create: Any, request: Any, adapter: dict[str, Any] | None
                        ) -> AsyncGenerator[dict | str, None]:
        if adapter is None:
            # vLLM names every answer after its first served name; a route answers
            # under its own (an adapter answers as its resolved version, below).
            name = request.model
            async for item in create(request):
                yield with_model_name(item, name) if name else item
            return
        try:
            handle = await self._get_adapter(adapter)
        except LoragError as err:
            yield failed(err)
            return
        with handle.use() as engine_name:
            request.model = engine_name
            async for item in create(request):
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
    """Embedders and FAISS indexes: over the shared data directory (`writer` None), or,
    with `retrieval.storage: replicated`, the writer (`role` "writer") or a copy that
    follows it (`writer`: the writer's handle). Replies of a replicated mode name the
    replica that answered (`replica`: node_id, role)."""

    METHODS = frozenset({"create_index", "list_indexes", "index_stats", "delete_index",
                         "add_documents", "get_document", "list_documents", "delete_document",
                         "search", "rerank", "embed"})
    WRITER_METHODS = frozenset({"replication_state", "replication_changes",
                                "replication_copy"})

    async def __init__(self, config: dict[str, Any], writer: Any = None, role: str = "shared"):
        import ray

        from retrieval.service import RetrieverService

        cfg = LoragConfig.model_validate(config).retrieval
        role = "copy" if writer is not None else role
        self.methods = self.METHODS | (self.WRITER_METHODS if role == "writer" else
                                       {"replication_state"} if role == "copy" else set())
        self.replica = None if role == "shared" else {
            "node_id": ray.get_runtime_context().get_node_id(), "role": role,
            "replica_id": serve.get_replica_context().replica_id.unique_id}
        data_dir, follow = cfg.data_dir, None
        if writer is not None:
            data_dir = replica_dir(cfg.replica_dir, cfg.data_dir)
            follow = _writer_calls(writer)
        full = LoragConfig.model_validate(config)
        self.service = RetrieverService(
            data_dir, {name: spec.model_dump() for name, spec in full.indexes.items()},
            cfg.embedding_models, query_encoder=cfg.query_encoder,
            rerank_models=full.rerank_models_used(), writer=follow,
            sync_interval_s=cfg.sync_interval_s, read_your_writes=cfg.read_your_writes)
        await self.service.start()

    async def ping(self) -> bool:
        return True

    async def call(self, method: str, *args: Any) -> dict[str, Any]:
        """Run one service method; typed errors come back as data, not exceptions."""
        from pydantic import ValidationError

        if method not in self.methods:
            raise ValueError(f"unknown retriever method {method}")
        try:
            reply = ok(await getattr(self.service, method)(*args))
        except DomainError as err:
            reply = failed(err)
        except ValidationError as err:
            reply = failed(from_pydantic_error(err))
        if self.replica is not None:
            follower = self.service.follower
            reply["replica"] = {**self.replica, **(follower.status() if follower else {})}
        return reply

    def __del__(self) -> None:
        if hasattr(self, "service"):
            self.service.close()


def _writer_calls(writer: Any):
    """`writer(method, *args)`: the writer replica's answer, or its error raised. Small
    calls (the state before each read, slices of changes) go by value, Ray Serve's direct
    path; a whole copy of an index goes through the object store."""
    direct = writer.options(_by_reference=False)

    async def call(method: str, *args: Any) -> Any:
        handle = writer if method == "replication_copy" else direct
        return unwrap(await handle.call.remote(method, *args))

    return call


class AdapterRegistryDeployment:
    """The single writer of the adapter registry (one replica)."""

    METHODS = frozenset({"register", "activate", "discard", "unregister", "resolve",
                         "describe"})

    async def __init__(self, config: dict[str, Any]):
        from adapters.service import AdapterService

        self.service = AdapterService(LoragConfig.model_validate(config).adapter_settings())
        await self.service.start()

    async def ping(self) -> bool:
        return True

    async def call(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if method not in self.METHODS:
            raise ValueError(f"unknown registry method {method}")
        try:
            return ok(await getattr(self.service, method)(*args, **kwargs))
        except DomainError as err:
            return failed(err)
