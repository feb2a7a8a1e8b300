"""The lorag config tree: one YAML file parsed into strict pydantic models.

Every model forbids unknown keys, so a typo fails at start-up with the path of
the field (``models.smol.engine.max_model_len: ...``) instead of being ignored.

Example::

    cfg = load_config("configs/default.yaml")
    cfg.route("base").model   # -> "smollm2"
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from adapters.service import AdapterSettings, BaseModelInfo, pick_base_model
from lorag_core.strict import StrictModel as _Strict
from retrieval.reranker import DEFAULT_RERANKER
from retrieval.spec import DEFAULT_EMBEDDER, IndexSpec
from serving.audit import AuditConfig
from serving.auth import AuthConfig
from serving.model_config import DeploymentConfig, EngineConfig, ModelConfig
from serving.routes import NAME_RE, RouteConfig, check_route

__all__ = ["DEFAULT_CONFIG_PATH", "ConfigError", "IngressConfig", "ServerConfig",
           "RetrievalConfig", "IndexConfig", "AdapterStoreConfig", "AdapterSpec",
           "LoragConfig", "llm_deployment_name", "parse_config", "with_adapter_roots",
           "dump_config", "load_config",
           # the config tree's parts defined beside it, re-exported here
           "RouteConfig", "ModelConfig", "EngineConfig", "DeploymentConfig"]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "configs" / "default.yaml"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and field."""


class IngressConfig(_Strict):
    deployment: DeploymentConfig = Field(
        default_factory=lambda: DeploymentConfig(num_replicas=1, num_cpus=0.25),
        description="Ray Serve settings of the OpenAI-compatible ingress.",
    )
    request_timeout_s: float = Field(
        default=600.0, gt=0,
        description="Longest time a request may take end to end, in seconds."
    )
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024,
        description="Largest JSON request body accepted, in bytes (413 beyond; uploads have "
        "retrieval.max_upload_bytes).")


class ServerConfig(_Strict):
    host: str = Field(default="127.0.0.1", description="Address the HTTP proxy binds.")
    port: int = Field(default=8000, ge=1, le=65535, description="HTTP port.")
    app_name: str = Field(default="lorag", description="Ray Serve application name.")
    access_log: bool = Field(
        default=False,
        description="Ray Serve per-request access log lines in every replica; off by "
        "default because at high request rates the logging costs CPU the engine needs.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the Ray Serve replicas."
    )
    ingress: IngressConfig = Field(
        default_factory=IngressConfig,
        description="The OpenAI-compatible ingress: its deployment, request timeout and "
        "body size limit.")
    auth: AuthConfig = Field(default_factory=AuthConfig,
                             description="API keys, their grants, rate limits and reloads.")
    audit: AuditConfig = Field(default_factory=AuditConfig,
                               description="The audit trail of admin writes.")

    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")

    @model_validator(mode="after")
    def _auth_off_only_locally(self) -> ServerConfig:
        if not self.auth.enabled and not self.loopback():
            raise ValueError(f"auth.enabled: false is for local use only, but host is "
                             f"{self.host!r}; bind 127.0.0.1 or configure API keys")
        return self


class RetrievalConfig(_Strict):
    """The retriever deployment: embedders + FAISS indexes, over one shared data directory
    or, with `storage: replicated`, a writer's store that each replica copies."""

    data_dir: str | None = Field(
        default=None,
        description="Where indexes live (a persistent volume in Kubernetes); null means "
        "$LORAG_DATA_DIR, else ~/.local/share/lorag. With storage: replicated, only the "
        "writer uses it.",
    )
    storage: Literal["shared", "replicated"] = Field(
        default="shared",
        description="shared: every retriever replica reads and writes the stores in "
        "data_dir, so all must see one filesystem on one node. replicated: one writer "
        "replica owns data_dir and takes every write; retriever replicas, on any node, "
        "answer reads from their own copies in replica_dir (docs/retrieval.md, Replicas).")
    replica_dir: str | None = Field(
        default=None,
        description="storage: replicated: local disk where each retriever replica keeps "
        "its copies (one slot-N folder per replica on the node; a restarted replica takes "
        "a free slot and catches up from the copy there). null: $LORAG_REPLICA_DIR, else "
        "<data_dir>/replicas.")
    sync_interval_s: float = Field(
        default=1.0, gt=0, le=60,
        description="storage: replicated: how often an idle copy asks the writer for new "
        "changes (reads ask before they answer), and how long a copy answers as it is "
        "before asking an unreachable writer again.")
    read_your_writes: bool = Field(
        default=True,
        description="storage: replicated: each read first asks the writer how far it is "
        "(one small call, shared by concurrent reads) and pulls what the copy lacks, so a "
        "client reads its acknowledged writes on any replica. false: reads answer from the "
        "copy as it is, at most sync_interval_s (plus the pull) behind; cheaper per search.")
    writer: DeploymentConfig = Field(
        default_factory=lambda: DeploymentConfig(num_replicas=1, num_cpus=0.5),
        description="storage: replicated: Ray Serve settings of the writer (one replica; "
        "pin it with `resources` to the node that holds data_dir).")
    embedding_models: dict[str, str] = Field(
        default_factory=lambda: {"all-minilm-l6-v2": DEFAULT_EMBEDDER},
        description="OpenAI `model` ids served by POST /v1/embeddings -> embedder source.",
    )
    query_encoder: Literal["onnx-int8", "onnx", "torch"] = Field(
        default="onnx-int8",
        description="How search queries are embedded on CPU: the embedder as an int8 ONNX "
        "graph (fastest; cosine ~0.99 to the exact vector), the exact ONNX graph, or torch "
        "(slowest). Documents and /v1/embeddings are always exact; on a GPU queries run "
        "through torch. Measured costs: docs/benchmarks.md.",
    )
    rerank_models: dict[str, str] = Field(
        default_factory=lambda: {"smollm2-135m-instruct": DEFAULT_RERANKER},
        description="Causal LMs a route's retrieval.rerank may name -> source (builtin:, a "
        "Hugging Face id or a folder). Run by transformers in the retriever replicas; "
        "loaded at start-up only when a route uses them.",
    )
    deployment: DeploymentConfig = Field(
        default_factory=lambda: DeploymentConfig(num_replicas=1, num_cpus=0.5),
        description="Ray Serve settings of the retriever deployment.",
    )
    max_documents_per_request: int = Field(default=1000, ge=1,
                                           description="Documents in one ingestion request.")
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, ge=1024,
                                  description="Largest multipart upload accepted, in bytes.")

    @model_validator(mode="after")
    def _one_writer(self) -> RetrievalConfig:
        if self.writer.num_replicas not in (None, 1) or self.writer.autoscaling_config:
            raise ValueError("retrieval.writer runs exactly one replica (it is the one "
                             "writer of the stores); leave num_replicas at 1")
        return self


class IndexConfig(IndexSpec):
    """An index the server creates at start-up when it does not exist yet."""

    documents: str | None = Field(
        default=None,
        description="Folder of .md/.rst/.adoc/.txt/.html files (doc_id = file stem, title = "
        "first heading) ingested when the index is created; relative to this config file. "
        "Later changes go through the API (a restart never overwrites them).")

    def spec(self) -> IndexSpec:
        return IndexSpec.model_validate(self.model_dump(exclude={"documents"}))


class AdapterStoreConfig(_Strict):
    """Where adapters may come from and where registered versions are kept."""

    data_dir: str | None = Field(
        default=None,
        description="Registry and frozen adapter copies (a persistent volume in Kubernetes, "
        "shared by the LLM replicas); null means the retrieval data_dir.",
    )
    local_roots: list[str] = Field(
        default_factory=list,
        description="Folders local adapter sources must lie in (after resolving symlinks); "
        "relative paths are relative to this config file. Empty: no local sources.",
    )
    allowed_schemes: list[Literal["file", "hf", "s3", "gs", "az", "memory"]] = Field(
        default_factory=lambda: ["file", "hf", "s3"],
        description="Source kinds accepted by POST /v1/adapters ('file' = local folders).",
    )
    storage_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="fsspec options per scheme, e.g. {s3: {endpoint_url: http://minio:9000}}; "
        "credentials come from the environment (AWS_ACCESS_KEY_ID, ...), not from here.",
    )
    max_adapter_bytes: int = Field(default=512 * 1024 * 1024, ge=1024,
                                   description="Largest adapter folder accepted, in bytes.")
    num_cpus: float = Field(default=0.1, ge=0,
                            description="CPUs reserved by the (single) registry replica.")


class AdapterSpec(_Strict):
    """An adapter registered at start-up (idempotent: same content, same version)."""

    source: str = Field(description="Local folder (relative to this config file), hf://org/"
                        "name[@rev] or s3://bucket/prefix.")
    base_model: str | None = Field(
        default=None, description="Key in `models`; null when there is only one model.")


class LoragConfig(_Strict):
    server: ServerConfig = Field(
        default_factory=ServerConfig,
        description="HTTP server, ingress, logging and API-key settings.")
    models: dict[str, ModelConfig] = Field(
        min_length=1,
        description="Base models, by key; each is served by its own LLM deployment.")
    retrieval: RetrievalConfig = Field(
        default_factory=RetrievalConfig,
        description="The retriever deployment: embedders, rerank models, data directory "
        "and ingestion limits.")
    indexes: dict[str, IndexConfig] = Field(
        default_factory=dict, description="Indexes created at start-up if missing.")
    adapter_store: AdapterStoreConfig = Field(
        default_factory=AdapterStoreConfig,
        description="Where LoRA adapters may come from and where registered versions are "
        "kept.")
    adapters: dict[str, AdapterSpec] = Field(
        default_factory=dict, description="LoRA adapters registered at start-up, by name.")
    routes: list[RouteConfig] = Field(
        min_length=1,
        description="What clients name as `model`: a base model, optionally with an adapter "
        "and retrieval.")

    @model_validator(mode="after")
    def _check_references(self) -> LoragConfig:
        for key in self.models:
            if not re.match(NAME_RE, key):
                raise ValueError(f"models.{key}: model keys must match {NAME_RE}")
        seen: set[str] = set(self.retrieval.embedding_models)
        for i, route in enumerate(self.routes):
            where = f"routes.{i}"
            if route.name in seen:
                raise ValueError(f"{where}.name: duplicate route name {route.name!r}")
            seen.add(route.name)
            check_route(self, where, route)
        for name, spec in self.adapters.items():
            if name in seen:
                raise ValueError(f"adapters.{name}: the name is already a route or model id")
            self.adapter_base(name, spec.base_model)
        return self

    def adapter_base(self, where: str, base_model: str | None) -> str:
        """The model key an adapter runs on; ValueError naming `where` if unusable."""
        try:
            return pick_base_model(base_model, {key: m.engine.enable_lora
                                                for key, m in self.models.items()})
        except ValueError as err:
            raise ValueError(f"adapters.{where}.base_model: {err}") from None

    def adapter_settings(self) -> AdapterSettings:
        """What the adapter registry's service needs from this config."""
        store = self.adapter_store
        return AdapterSettings(
            models={key: BaseModelInfo(source=m.source, max_lora_rank=m.engine.max_lora_rank,
                                       enable_lora=m.engine.enable_lora)
                    for key, m in self.models.items()},
            data_dir=store.data_dir or self.retrieval.data_dir,
            local_roots=tuple(store.local_roots),
            storage_options=store.storage_options,
            allowed_schemes=tuple(store.allowed_schemes),
            max_adapter_bytes=store.max_adapter_bytes,
            preload={name: (spec.source, spec.base_model) for name, spec in self.adapters.items()},
            reserved_names=frozenset(self.reserved_names()))

    def rerank_models_used(self) -> dict[str, str]:
        """The rerank models some route uses: name -> source."""
        used = {r.retrieval.rerank.model for r in self.routes
                if r.retrieval is not None and r.retrieval.rerank is not None}
        return {k: v for k, v in self.retrieval.rerank_models.items() if k in used}

    def reserved_names(self) -> set[str]:
        """Ids a client can already name as `model`; adapters may not take them."""
        return {r.name for r in self.routes} | set(self.retrieval.embedding_models)

    def route(self, name: str) -> RouteConfig | None:
        return next((r for r in self.routes if r.name == name), None)

    def routes_of(self, model_key: str) -> list[RouteConfig]:
        return [r for r in self.routes if r.model == model_key]

    def llm_key(self, route: RouteConfig) -> str:
        """Key of the LLM deployment serving `route` (see `llm_deployments`)."""
        return f"{route.model}:{route.name}" if route.deployment is not None else route.model

    def llm_deployments(self) -> dict[str, tuple[str, DeploymentConfig, list[str]]]:
        """Every LLM deployment: key -> (model key, scaling, route names served)."""
        out: dict[str, tuple[str, DeploymentConfig, list[str]]] = {}
        for key, model in self.models.items():
            shared = [r.name for r in self.routes_of(key) if r.deployment is None]
            out[key] = (key, model.deployment, shared or [key])
        for route in self.routes:
            if route.deployment is not None:
                out[self.llm_key(route)] = (route.model, route.deployment, [route.name])
        return out


def llm_deployment_name(key: str) -> str:
    """The Ray Serve name of the LLM deployment with key `key` (`LoragConfig.llm_key`):
    `LLM:<model>` (shared by the model's routes) or `LLM:<model>:<route>` (a route's own)."""
    return f"LLM:{key}"


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)


def _local(path: str) -> bool:
    return "://" not in path


def _anchor_paths(data: dict[str, Any], base_dir: Path) -> None:
    """Make relative local paths (adapters, index documents) relative to the config file."""
    def anchor(p: Any) -> Any:
        if not isinstance(p, str) or not _local(p):
            return p
        p = os.path.expanduser(p)
        return p if os.path.isabs(p) else str((base_dir / p).resolve())

    store = data.get("adapter_store")
    if isinstance(store, dict) and isinstance(store.get("local_roots"), list):
        store["local_roots"] = [anchor(p) for p in store["local_roots"]]
    if isinstance(data.get("indexes"), dict):
        for spec in data["indexes"].values():
            if isinstance(spec, dict) and isinstance(spec.get("documents"), str):
                spec["documents"] = anchor(spec["documents"])
    if isinstance(data.get("adapters"), dict):
        for spec in data["adapters"].values():
            if isinstance(spec, dict) and "source" in spec:
                spec["source"] = anchor(spec["source"])
    server = data.get("server")
    auth = server.get("auth") if isinstance(server, dict) else None
    if isinstance(auth, dict) and isinstance(auth.get("keys_file"), str):
        auth["keys_file"] = anchor(auth["keys_file"])
    audit = server.get("audit") if isinstance(server, dict) else None
    if isinstance(audit, dict) and isinstance(audit.get("path"), str) \
            and audit["path"] != "stdout":
        audit["path"] = anchor(audit["path"])


def parse_config(data: Any, source: str = "<config>",
                 base_dir: Path | None = None) -> LoragConfig:
    """Validate a parsed YAML/JSON document; raises ConfigError naming the field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    if base_dir is not None:
        _anchor_paths(data, base_dir)
    try:
        return LoragConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_format_validation_error(err)}") from None


def with_adapter_roots(config: LoragConfig, roots: list[str],
                       storage_options: dict[str, dict[str, Any]] | None = None) -> LoragConfig:
    """A copy that also accepts adapters from `roots` (tests, benchmarks)."""
    store = config.adapter_store.model_copy(update={
        "local_roots": [*config.adapter_store.local_roots, *roots],
        "storage_options": storage_options or config.adapter_store.storage_options})
    return config.model_copy(update={"adapter_store": store})


def dump_config(config: LoragConfig, path: str | Path) -> Path:
    """Write a loaded config back as YAML; its local paths are already absolute."""
    Path(path).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return Path(path)


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that rejects a key given twice in one mapping (YAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path | None = None) -> LoragConfig:
    """Read and validate a config file (the shipped default when path is None)."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err.strerror}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return parse_config(data, str(path), base_dir=path.resolve().parent)
