"""The Serve side of `lorag k8s render`: the config as pods see it, and `serveConfigV2`.

The deployments in `serveConfigV2` come from Ray's own machinery: the app that
`serving.app:build_app` builds from the config is walked by Ray Serve's
`build_app` and each deployment turned into its schema by `deployment_to_schema`
(what `serve build` does), then the whole document is checked by
`ServeDeploySchema`. So every route's deployment, with its replicas or
autoscaling, lands in the manifest under the name `serving.app` gives it
(`Ingress`, `LLM:<key>`, `Retriever`, `RetrieverWriter` with `retrieval.storage:
replicated`, `AdapterRegistry`).

Example::

    pod_cfg = pod_config(load_config("configs/default.yaml"), PodPaths())
    doc = serve_config(pod_cfg, ServeOptions(config_path="/etc/lorag/config.yaml"))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.config import ConfigError, LoragConfig, llm_deployment_name

__all__ = ["REPO_ROOT", "APP_IMPORT_PATH", "INDEX_STORE_RESOURCE", "INDEX_STORE_SLOTS",
           "PodPaths", "pod_config", "ServeOptions", "llm_gpu_counts", "serve_config",
           "KEYS_MOUNT_DIR", "KEYS_FILE", "REPLICA_MOUNT_DIR"]

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_IMPORT_PATH = "serving.app:build_app"
# A Ray custom resource only the head pod advertises: the retriever's replicas
# must share one node, because the index store is SQLite (WAL) and its locks and
# shared memory only work between processes of one kernel (README, Retrieval).
INDEX_STORE_RESOURCE = "lorag_index_store"
INDEX_STORE_SLOTS = 100


@dataclass(frozen=True)
class PodPaths:
    """Where things are inside the pods."""

    app_dir: str = "/app"                  # the repository inside the image
    data_dir: str = "/var/lib/lorag"       # the persistent volume
    path_map: dict[str, str] = field(default_factory=dict)  # local prefix -> pod prefix

    @property
    def incoming_dir(self) -> str:
        """Where operators copy adapter folders before POST /v1/adapters."""
        return f"{self.data_dir.rstrip('/')}/incoming"


def _pod_path(path: str, where: str, paths: PodPaths) -> str:
    if "://" in path:                      # s3://, hf://: fetched by the pods themselves
        return path
    real = os.path.realpath(path)
    for local, pod in sorted(paths.path_map.items(), key=lambda kv: -len(kv[0])):
        local = os.path.realpath(local)
        if real == local or real.startswith(local.rstrip("/") + "/"):
            return pod.rstrip("/") + real[len(local.rstrip("/")):]
    root = str(REPO_ROOT)
    if real == root or real.startswith(root + "/"):
        return paths.app_dir.rstrip("/") + real[len(root):]
    raise ConfigError(
        f"{where}: {path} is neither in the repository (which the image holds) nor "
        f"mapped to the pods; put it on the data volume ({paths.incoming_dir}) or an "
        "object store (s3://...), or map it with --path-map LOCAL=POD")


def pod_config(config: LoragConfig, paths: PodPaths) -> LoragConfig:
    """The config as the pods must read it: repository paths moved to the image's copy,
    indexes and adapter versions on the persistent volume, adapters copied onto the
    volume accepted as sources."""
    indexes = {
        name: spec.model_copy(update={"documents": _pod_path(
            spec.documents, f"indexes.{name}.documents", paths)})
        if spec.documents else spec
        for name, spec in config.indexes.items()}
    adapters = {
        name: spec.model_copy(update={"source": _pod_path(
            spec.source, f"adapters.{name}.source", paths)})
        for name, spec in config.adapters.items()}
    roots = [_pod_path(r, f"adapter_store.local_roots.{i}", paths)
             for i, r in enumerate(config.adapter_store.local_roots)]
    if paths.incoming_dir not in roots:
        roots.append(paths.incoming_dir)
    store = config.adapter_store.model_copy(update={"local_roots": roots, "data_dir": None})
    retrieval = config.retrieval.model_copy(update={
        "data_dir": paths.data_dir,
        "replica_dir": REPLICA_MOUNT_DIR if config.retrieval.storage == "replicated" else None})
    # Pods listen on every interface, so API keys are always required there (auth off is
    # for local use only); the keys come from the Secret's LORAG_API_KEYS, the config's
    # digests, or the key file, which the render puts in its own Secret mounted as a
    # volume (updated in place, so keys rotate without a restart).
    auth = config.server.auth.model_copy(update={
        "enabled": True,
        "keys_file": KEYS_FILE if config.server.auth.keys_file else None})
    audit = config.server.audit
    if audit.path not in (None, "stdout"):  # a local file: on the data volume in the pods
        audit = audit.model_copy(update={
            "path": f"{paths.data_dir.rstrip('/')}/audit/{os.path.basename(audit.path)}"})
    server = config.server.model_copy(update={"host": "0.0.0.0", "auth": auth,
                                              "audit": audit})
    return config.model_copy(update={
        "indexes": indexes, "adapters": adapters, "adapter_store": store,
        "retrieval": retrieval, "server": server})


REPLICA_MOUNT_DIR = "/var/lib/lorag-replicas"  # an emptyDir per pod: retriever copies
KEYS_MOUNT_DIR = "/etc/lorag/keys"           # the key file's Secret, mounted whole
KEYS_FILE = f"{KEYS_MOUNT_DIR}/keys.yaml"


@dataclass(frozen=True)
class ServeOptions:
    config_path: str = "/etc/lorag/config.yaml"   # where the ConfigMap is mounted
    config_sha256: str | None = None   # of the ConfigMap's text: see serve_config
    llm_num_gpus: float = 1.0      # per LLM replica where the config leaves num_gpus null
    pin_retriever: bool = True     # keep the retriever's replicas on the head pod
    env_vars: dict[str, str] = field(default_factory=dict)  # the application's runtime_env


def llm_gpu_counts(config: LoragConfig, default: float) -> dict[str, float]:
    """GPUs per replica of each LLM deployment (`LLM:<key>` -> count)."""
    return {llm_deployment_name(key): (scaling.num_gpus if scaling.num_gpus is not None
                                       else default)
            for key, (_, scaling, _) in config.llm_deployments().items()}


def _deployments(config: LoragConfig, options: ServeOptions) -> list[dict[str, Any]]:
    from ray.serve._private.build_app import build_app
    from ray.serve.deployment import deployment_to_schema

    from serving.app import build_from_config

    built = build_app(build_from_config(config), name=config.server.app_name)
    gpus = llm_gpu_counts(config, options.llm_num_gpus)
    out = []
    for dep in built.deployments:
        schema = deployment_to_schema(dep).model_dump(mode="json", exclude_unset=True)
        # The builder decides GPUs from the cluster it runs in; an autoscaling cluster
        # may have no GPU node yet when it does, so the manifest states them.
        actor = schema.setdefault("ray_actor_options", {})
        if dep.name in gpus:
            actor["num_gpus"] = gpus[dep.name]
        # The stores' one writer lives where the volume is: the shared mode's retriever
        # replicas (SQLite's locks need one kernel), or the replicated mode's writer.
        if dep.name == "RetrieverWriter" or (dep.name == "Retriever" and options.pin_retriever
                                             and config.retrieval.storage == "shared"):
            actor["resources"] = {**actor.get("resources", {}), INDEX_STORE_RESOURCE: 1}
        out.append(schema)
    return out


def serve_config(config: LoragConfig, options: ServeOptions) -> dict[str, Any]:
    """The `serveConfigV2` document, validated by Ray Serve's `ServeDeploySchema`."""
    from ray.serve.schema import ServeDeploySchema

    app: dict[str, Any] = {
        "name": config.server.app_name,
        "route_prefix": "/",
        "import_path": APP_IMPORT_PATH,
        # The builder reads only `config`. The hash makes serveConfigV2 change whenever the
        # config does (a template or sampling edit changes no deployment), so that Serve
        # rebuilds the app and reads the new file.
        "args": {"config": options.config_path,
                 **({"config_sha256": options.config_sha256} if options.config_sha256 else {})},
        "deployments": _deployments(config, options),
    }
    if options.env_vars:
        app["runtime_env"] = {"env_vars": dict(options.env_vars)}
    doc = {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": config.server.port,
                         "request_timeout_s": config.server.ingress.request_timeout_s},
        "applications": [app],
    }
    ServeDeploySchema.model_validate(doc)
    return doc
