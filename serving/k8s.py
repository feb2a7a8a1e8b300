"""`lorag k8s render`: a KubeRay RayService (and what it needs) from the lorag config.

One config drives `make serve` and the cluster. The cluster facts that the
lorag config does not hold (image, GPU nodes, storage, names) live in
`KubeSettings`, read from an optional YAML file and the command line.

Rendered, in this order (a kustomize base with `--out DIR`):

- ConfigMap `<name>-config`: the lorag config with paths as the pods see them,
  mounted at /etc/lorag/config.yaml and named by `serveConfigV2`'s `args.config`.
- Secret `<name>-secrets`: credentials the pods read as environment variables
  (HF_TOKEN, AWS_*); filled from `--secret-env-file` or left empty to fill in.
- Secret `<name>-keys`, when the config names `server.auth.keys_file`: that file's
  contents, mounted whole at /etc/lorag/keys (no subPath), so that updating the Secret
  updates the file in the pods and the ingress re-reads it (keys rotate without a
  restart; docs/tenants.md).
- PersistentVolumeClaim `<name>-data`: indexes, adapter versions, model cache. With
  `retrieval.storage: replicated`, only the retrieval writer (pinned to the head) uses
  the indexes there; each pod has an emptyDir at /var/lib/lorag-replicas for the copies
  of the retriever replicas it runs, so retrieval needs no volume shared across nodes.
- RayService `<name>`: head group + GPU worker group, Ray autoscaling,
  `serveConfigV2` (see serving/k8s_serve.py), probes, and `serveService`, the
  Service on the OpenAI port that KubeRay keeps pointed at the serving cluster.

Targets KubeRay v1.5 (ray.io/v1; nothing used here is newer than v1.3).

Example::

    docs = render(load_config("configs/default.yaml"), KubeSettings(image="reg/lorag:gpu"))
    print(dump_documents(docs))
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from serving.config import ConfigError, LoragConfig
from serving.k8s_serve import (
    INDEX_STORE_RESOURCE,
    INDEX_STORE_SLOTS,
    KEYS_MOUNT_DIR,
    REPLICA_MOUNT_DIR,
    PodPaths,
    ServeOptions,
    llm_gpu_counts,
    pod_config,
    serve_config,
)
from serving.ray_env import serving_env

__all__ = ["KUBERAY_VERSION", "CONFIG_MOUNT_DIR", "DASHBOARD_AGENT_PORT", "DASHBOARD_PORT",
           "HeadSettings", "GPUWorkerSettings", "StorageSettings", "KubeSettings",
           "pod_env", "ray_service", "serve_service", "config_text", "config_map", "secret",
           "keys_secret",
           "volume_claim", "render", "dump_yaml", "dump_documents", "load_settings"]

KUBERAY_VERSION = "v1.5.1"
CONFIG_MOUNT_DIR = "/etc/lorag"
# Ports of Ray's own health endpoints, as KubeRay's default probes use them.
DASHBOARD_AGENT_PORT = 52365
DASHBOARD_PORT = 8265


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HeadSettings(_Strict):
    cpu: str = Field(default="4", description="CPU request = limit of the head pod; the "
                     "head also runs the ingress, the retriever and the adapter registry.")
    memory: str = Field(default="16Gi", description="Memory request = limit of the head pod.")


class GPUWorkerSettings(_Strict):
    group_name: str = Field(default="gpu", description="KubeRay worker group name.")
    gpus_per_pod: int = Field(default=1, ge=0, description="GPUs requested by one worker "
                              "pod; 0 renders a CPU worker group (the CPU image).")
    gpu_resource: str = Field(default="nvidia.com/gpu",
                              description="Extended resource name of the GPUs.")
    cpu: str = Field(default="8", description="CPU request = limit of a GPU worker pod.")
    memory: str = Field(default="48Gi", description="Memory request = limit of a GPU worker.")
    min_pods: int | None = Field(default=None, ge=0, description="Fewest GPU pods; null: "
                                 "enough for every LLM deployment's minimum replicas.")
    max_pods: int | None = Field(default=None, ge=1, description="Most GPU pods; null: "
                                 "enough for every LLM deployment's maximum replicas.")
    node_selector: dict[str, str] = Field(default_factory=dict,
                                          description="nodeSelector of the GPU pods.")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists",
                                  "effect": "NoSchedule"}],
        description="Tolerations of the GPU pods (GPU node pools are usually tainted).")


class StorageSettings(_Strict):
    size: str = Field(default="100Gi", description="Requested size of the data volume.")
    storage_class: str | None = Field(default=None, description="storageClassName; null: "
                                      "the cluster's default class.")
    access_modes: list[Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"]] = Field(
        default_factory=lambda: ["ReadWriteMany"],
        description="The head (indexes, registry) and every GPU pod (adapter files) mount "
        "it, so it must be ReadWriteMany unless all pods share one node.")
    mount_path: str = Field(default="/var/lib/lorag", description="Where pods mount it.")


class KubeSettings(_Strict):
    """Cluster facts `lorag k8s render` needs beyond the lorag config."""

    name: str = Field(default="lorag", pattern=r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$",
                      description="RayService name; prefix of the other objects.")
    namespace: str = Field(default="default", description="Namespace of every object.")
    image: str = Field(default="lorag:0.1.0-gpu", description="Image built from "
                       "deploy/Dockerfile.gpu (or Dockerfile.cpu).")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    app_dir: str = Field(default="/app", description="The repository inside the image.")
    path_map: dict[str, str] = Field(default_factory=dict, description="Local path prefix "
                                     "-> path in the pods, for files outside the repository.")
    llm_num_gpus: float = Field(default=1.0, ge=0, description="GPUs per LLM replica where "
                                "the lorag config leaves num_gpus null.")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    upgrade_strategy: Literal["NewCluster", "None"] = Field(
        default="NewCluster", description="KubeRay's answer to a changed rayClusterConfig: "
        "a new cluster, traffic switched when it is ready (zero downtime), or nothing.")
    autoscaler_idle_timeout_s: int = Field(default=300, ge=0, description="Idle seconds "
                                           "before the autoscaler removes a worker pod.")
    secret_data: dict[str, str] = Field(default_factory=dict, description="Secret "
                                        "contents (from --secret-env-file); empty: fill it in.")
    head: HeadSettings = Field(default_factory=HeadSettings)
    gpu_workers: GPUWorkerSettings = Field(default_factory=GPUWorkerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)


def pod_env(config: LoragConfig, settings: KubeSettings) -> list[dict[str, str]]:
    """Environment of every Ray container. The Serve settings must be in the container's
    environment (not a runtime_env): the controller and proxies read them at start."""
    data = settings.storage.mount_path
    env = {
        # What `lorag serve` sets too (serving/ray_env.py); the images have HAProxy.
        **serving_env(config, haproxy=True),
        "LORAG_CONFIG": f"{CONFIG_MOUNT_DIR}/config.yaml",
        "LORAG_DATA_DIR": data,
        "HF_HOME": f"{data}/hf",           # models named by hub id download once, here
    }
    return [{"name": k, "value": v} for k, v in env.items()]


def _gpu_pods(config: LoragConfig, settings: KubeSettings) -> tuple[int, int]:
    """(min, max) worker pods: enough GPUs for every LLM deployment's min/max replicas
    (one replica per pod for a CPU worker group)."""
    gpus = llm_gpu_counts(config, settings.llm_num_gpus)
    per_pod = settings.gpu_workers.gpus_per_pod
    low = high = 0.0
    for key, (_, scaling, _) in config.llm_deployments().items():
        auto = scaling.autoscaling_config or {}
        count = scaling.num_replicas or 1
        units = gpus[f"LLM:{key}"] if per_pod else 1
        low += units * (auto.get("min_replicas", 1) if auto else count)
        high += units * (auto.get("max_replicas", 1) if auto else count)
    per_pod = per_pod or 1
    low_pods = settings.gpu_workers.min_pods
    high_pods = settings.gpu_workers.max_pods
    low_pods = math.ceil(low / per_pod) if low_pods is None else low_pods
    high_pods = max(math.ceil(high / per_pod), 1) if high_pods is None else high_pods
    if low_pods > high_pods:
        raise ConfigError(f"gpu_workers: min_pods {low_pods} > max_pods {high_pods}")
    return low_pods, high_pods


def _probe(command: str, *, initial_delay_s: int, period_s: int, failures: int) -> dict:
    return {"exec": {"command": ["bash", "-c", command]},
            "initialDelaySeconds": initial_delay_s, "periodSeconds": period_s,
            "timeoutSeconds": 5, "failureThreshold": failures, "successThreshold": 1}


def _health(port: int, path: str) -> str:
    return f"wget -T 4 -q -O- http://localhost:{port}{path} | grep success"


def _probes(*, head: bool, serve_port: int) -> dict[str, Any]:
    """KubeRay's own checks, made explicit: the raylet (and on the head the GCS) for
    liveness and readiness; a worker is ready only once its node's Serve proxy answers,
    so it gets traffic only when it can route it. Not the head: KubeRay submits
    `serveConfigV2` only to a ready head, and the proxies start after that. Liveness
    never waits on the engine: loading a model takes minutes."""
    alive = _health(DASHBOARD_AGENT_PORT, "/api/local_raylet_healthz")
    if head:
        alive += " && " + _health(DASHBOARD_PORT, "/api/gcs_healthz")
    ready = alive if head else alive + " && " + _health(serve_port, "/-/healthz")
    return {
        "livenessProbe": _probe(alive, initial_delay_s=30, period_s=10, failures=120),
        "readinessProbe": _probe(ready, initial_delay_s=10, period_s=5, failures=10),
    }


def _container(config: LoragConfig, settings: KubeSettings, *, name: str, cpu: str, memory: str,
               extra: dict[str, str] | None = None, probes: dict) -> dict[str, Any]:
    resources = {"cpu": cpu, "memory": memory, **(extra or {})}
    return {
        "name": name,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "env": pod_env(config, settings),
        "envFrom": [{"secretRef": {"name": f"{settings.name}-secrets", "optional": True}}],
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "volumeMounts": [
            {"name": "lorag-config", "mountPath": CONFIG_MOUNT_DIR, "readOnly": True},
            {"name": "lorag-data", "mountPath": settings.storage.mount_path},
            {"name": "dshm", "mountPath": "/dev/shm"},   # Ray's object store, NCCL
        ] + ([{"name": "lorag-keys", "mountPath": KEYS_MOUNT_DIR, "readOnly": True}]
             if config.server.auth.keys_file else [])
        + ([{"name": "lorag-replicas", "mountPath": REPLICA_MOUNT_DIR}]
           if config.retrieval.storage == "replicated" else []),
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
        **probes,
    }


def _pod_spec(settings: KubeSettings, container: dict, **extra: Any) -> dict[str, Any]:
    keys = any(m["name"] == "lorag-keys" for m in container["volumeMounts"])
    replicas = any(m["name"] == "lorag-replicas" for m in container["volumeMounts"])
    return {
        "containers": [container],
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000},
        "volumes": [
            {"name": "lorag-config", "configMap": {"name": f"{settings.name}-config"}},
            {"name": "lorag-data",
             "persistentVolumeClaim": {"claimName": f"{settings.name}-data"}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}},
        ] + ([{"name": "lorag-keys", "secret": {"secretName": f"{settings.name}-keys",
                                                  "defaultMode": 0o440}}] if keys else [])
        # retrieval.storage: replicated: each pod's retriever copies, on its own node's disk
        + ([{"name": "lorag-replicas", "emptyDir": {}}] if replicas else []),
        **extra,
    }


def _labels(settings: KubeSettings) -> dict[str, str]:
    return {"app.kubernetes.io/name": "lorag", "app.kubernetes.io/instance": settings.name}


def _meta(settings: KubeSettings, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": settings.namespace, "labels": _labels(settings)}


def ray_service(config: LoragConfig, settings: KubeSettings,
                serve_doc: dict[str, Any]) -> dict[str, Any]:
    """The RayService object (ray.io/v1)."""
    import ray

    port = config.server.port
    gpu = settings.gpu_workers
    low, high = _gpu_pods(config, settings)
    head = _container(config, settings, name="ray-head", cpu=settings.head.cpu,
                      memory=settings.head.memory,
                      probes=_probes(head=True, serve_port=port))
    head["ports"] = [{"containerPort": 6379, "name": "gcs"},
                     {"containerPort": DASHBOARD_PORT, "name": "dashboard"},
                     {"containerPort": 10001, "name": "client"},
                     {"containerPort": port, "name": "serve"}]
    extra = {gpu.gpu_resource: str(gpu.gpus_per_pod)} if gpu.gpus_per_pod else {}
    worker = _container(config, settings, name="ray-worker", cpu=gpu.cpu, memory=gpu.memory,
                        extra=extra, probes=_probes(head=False, serve_port=port))
    placement: dict[str, Any] = {}
    if gpu.tolerations:
        placement["tolerations"] = gpu.tolerations
    if gpu.node_selector:
        placement["nodeSelector"] = gpu.node_selector
    worker_pod = _pod_spec(settings, worker, **placement)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {**_meta(settings, settings.name),
                     "annotations": {"lorag/rendered-for": f"KubeRay {KUBERAY_VERSION}"}},
        "spec": {
            "upgradeStrategy": {"type": settings.upgrade_strategy},
            "serveConfigV2": dump_yaml(serve_doc),
            "serveService": serve_service(config, settings),
            "rayClusterConfig": {
                "rayVersion": ray.__version__,
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": {"upscalingMode": "Default",
                                      "idleTimeoutSeconds": settings.autoscaler_idle_timeout_s},
                "headGroupSpec": {
                    "rayStartParams": {
                        "dashboard-host": "0.0.0.0",
                        "resources": f'"{{\\"{INDEX_STORE_RESOURCE}\\": {INDEX_STORE_SLOTS}}}"',
                    },
                    "template": {"metadata": {"labels": _labels(settings)},
                                 "spec": _pod_spec(settings, head)},
                },
                "workerGroupSpecs": [{
                    "groupName": gpu.group_name,
                    "replicas": low, "minReplicas": low, "maxReplicas": high,
                    "rayStartParams": {},
                    "template": {"metadata": {"labels": _labels(settings)},
                                 "spec": worker_pod},
                }],
            },
        },
    }


def serve_service(config: LoragConfig, settings: KubeSettings) -> dict[str, Any]:
    """The Service on the OpenAI port. As the RayService's `serveService`, KubeRay keeps
    its selector on the pods of the cluster that serves (across zero-downtime upgrades)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{settings.name}-openai", "namespace": settings.namespace,
                     "labels": _labels(settings)},
        "spec": {"type": settings.service_type,
                 "ports": [{"name": "openai", "port": config.server.port,
                            "targetPort": config.server.port, "protocol": "TCP"}]},
    }


def config_text(pod_cfg: LoragConfig, source: str) -> str:
    return (f"# Rendered by `lorag k8s render` from {source}; paths are the pods'.\n"
            + dump_yaml(pod_cfg.model_dump(mode="json")))


def config_map(text: str, settings: KubeSettings) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _meta(settings, f"{settings.name}-config"),
            "data": {"config.yaml": text}}


def secret(settings: KubeSettings) -> dict[str, Any]:
    meta = _meta(settings, f"{settings.name}-secrets")
    meta["annotations"] = {"lorag/keys": "LORAG_API_KEYS (the API keys, `lorag keys create`), "
                           "HF_TOKEN, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                           "AWS_ENDPOINT_URL: read by the pods as environment variables"}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
            "stringData": dict(settings.secret_data)}


def keys_secret(keys_text: str, settings: KubeSettings) -> dict[str, Any]:
    """The key file (server.auth.keys_file) as its own Secret, mounted as a volume."""
    meta = _meta(settings, f"{settings.name}-keys")
    meta["annotations"] = {"lorag/keys": "server.auth.keys_file, mounted at "
                           f"{KEYS_MOUNT_DIR}; update it to add or revoke keys (`lorag keys "
                           "create|revoke --file keys.yaml`, then apply this Secret again)"}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
            "stringData": {"keys.yaml": keys_text}}


def volume_claim(settings: KubeSettings) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": list(settings.storage.access_modes),
                            "resources": {"requests": {"storage": settings.storage.size}}}
    if settings.storage.storage_class:
        spec["storageClassName"] = settings.storage.storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _meta(settings, f"{settings.name}-data"), "spec": spec}


def render(config: LoragConfig, settings: KubeSettings,
           source: str = "the lorag config") -> list[dict[str, Any]]:
    """Every object, in the order to apply them."""
    paths = PodPaths(app_dir=settings.app_dir, data_dir=settings.storage.mount_path,
                     path_map=settings.path_map)
    pod_cfg = pod_config(config, paths)
    text = config_text(pod_cfg, source)
    doc = serve_config(pod_cfg, ServeOptions(
        config_path=f"{CONFIG_MOUNT_DIR}/config.yaml", llm_num_gpus=settings.llm_num_gpus,
        config_sha256=hashlib.sha256(text.encode()).hexdigest()))
    keys = []
    if config.server.auth.keys_file:
        try:
            keys_text = Path(config.server.auth.keys_file).read_text()
        except OSError as err:
            raise ConfigError(f"server.auth.keys_file: cannot read "
                              f"{config.server.auth.keys_file} ({err.strerror}); the render "
                              "puts it in a Secret") from None
        keys = [keys_secret(keys_text, settings)]
    return [config_map(text, settings), secret(settings), *keys, volume_claim(settings),
            ray_service(pod_cfg, settings, doc)]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the config, serveConfigV2) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100)


def dump_documents(docs: list[dict[str, Any]]) -> str:
    return "---\n".join(dump_yaml(d) for d in docs)


def load_settings(path: str | Path | None) -> KubeSettings:
    if path is None:
        return KubeSettings()
    data = yaml.safe_load(Path(path).read_text()) or {}
    try:
        return KubeSettings.model_validate(data)
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None
