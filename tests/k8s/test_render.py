"""`lorag k8s render`: every object validates against its real schema, and the config's
scaling, GPUs, secret, probes and storage land where KubeRay and Ray Serve read them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from serving.cli import build_parser
from serving.config import ConfigError, load_config, parse_config
from serving.k8s import KubeSettings, render
from serving.k8s_cli import settings_from_args
from tests.k8s.schemas import ROOT, rayservice_errors, validate_core

DEFAULT = ROOT / "configs" / "default.yaml"


def _config_with_rag_autoscaling():
    data = yaml.safe_load(DEFAULT.read_text())
    rag = next(r for r in data["routes"] if r["name"] == "rag")
    rag["deployment"] = {"autoscaling_config": {"min_replicas": 2, "max_replicas": 6,
                                                "target_ongoing_requests": 16}}
    data["server"]["ingress"]["deployment"] = {"num_replicas": 3, "num_cpus": 0.5}
    return parse_config(data, "test", base_dir=DEFAULT.parent)


def _render_cli(*argv: str) -> list[dict]:
    args = build_parser().parse_args(["k8s", "render", *argv])
    config = load_config(args.config) if args.config else load_config(DEFAULT)
    return render(config, settings_from_args(args))


def _by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs}


def _serve_config(docs: list[dict]) -> dict:
    return yaml.safe_load(_by_kind(docs)["RayService"]["spec"]["serveConfigV2"])


def _pods(docs: list[dict]) -> tuple[dict, dict]:
    cluster = _by_kind(docs)["RayService"]["spec"]["rayClusterConfig"]
    return (cluster["headGroupSpec"]["template"]["spec"],
            cluster["workerGroupSpecs"][0]["template"]["spec"])


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return render(_config_with_rag_autoscaling(), KubeSettings(image="reg/lorag:1"))


def test_core_objects_validate_against_kubernetes_schemas(docs):
    kinds = _by_kind(docs)
    assert [d["kind"] for d in docs] == ["ConfigMap", "Secret", "PersistentVolumeClaim",
                                         "RayService"]
    for kind in ("ConfigMap", "Secret", "PersistentVolumeClaim"):
        validate_core(kinds[kind])
    validate_core(kinds["RayService"]["spec"]["serveService"])   # the OpenAI Service


def test_rayservice_validates_against_kuberay_schema(docs):
    assert rayservice_errors(_by_kind(docs)["RayService"]) == []


def test_kuberay_schema_rejects_what_kuberay_would_not_take(docs):
    bad = yaml.safe_load(yaml.safe_dump(_by_kind(docs)["RayService"]))
    cluster = bad["spec"]["rayClusterConfig"]
    cluster["workerGroupSpec"] = cluster.pop("workerGroupSpecs")        # a typo
    cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    errors = rayservice_errors(bad)
    assert any("workerGroupSpec" in e for e in errors)
    assert any("imagePullPolicy" in e for e in errors)


def test_serve_config_validates_and_carries_every_deployments_scaling(docs):
    from ray.serve.schema import ServeDeploySchema

    doc = _serve_config(docs)
    ServeDeploySchema.model_validate(doc)
    (app,) = doc["applications"]
    assert app["import_path"] == "serving.app:build_app"
    assert app["args"]["config"] == "/etc/lorag/config.yaml"
    assert len(app["args"]["config_sha256"]) == 64
    deps = {d["name"]: d for d in app["deployments"]}
    # Pods always require API keys (auth on), so the per-key rate limiter is deployed too.
    assert set(deps) == {"Ingress", "LLM:smollm2", "LLM:smollm2:rag", "Retriever",
                         "AdapterRegistry", "RateLimiter"}
    assert deps["RateLimiter"]["num_replicas"] == 1
    assert deps["LLM:smollm2:rag"]["autoscaling_config"]["min_replicas"] == 2
    assert deps["LLM:smollm2:rag"]["autoscaling_config"]["max_replicas"] == 6
    assert "num_replicas" not in deps["LLM:smollm2:rag"]
    assert deps["LLM:smollm2"]["num_replicas"] == 1
    assert deps["Ingress"]["num_replicas"] == 3
    assert deps["Ingress"]["ray_actor_options"]["num_cpus"] == 0.5
    for name in ("LLM:smollm2", "LLM:smollm2:rag"):
        assert deps[name]["ray_actor_options"]["num_gpus"] == 1
    assert deps["Retriever"]["ray_actor_options"]["resources"] == {"lorag_index_store": 1}
    # The worker group can hold every LLM replica: 1 (shared) + up to 6 (rag).
    worker = _by_kind(docs)["RayService"]["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    assert (worker["minReplicas"], worker["maxReplicas"]) == (3, 7)


def test_gpu_requests_tolerations_and_node_selector_are_settable():
    docs = _render_cli("--gpus-per-pod", "2",
                       "--gpu-node-selector", "cloud.google.com/gke-accelerator=nvidia-l4",
                       "--gpu-toleration", "nvidia.com/gpu=present:NoSchedule",
                       "--image", "reg/lorag:2", "--namespace", "serving")
    head, worker = _pods(docs)
    res = worker["containers"][0]["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in head["containers"][0]["resources"]["limits"]
    assert worker["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert worker["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Equal",
                                      "value": "present", "effect": "NoSchedule"}]
    assert "tolerations" not in head and "nodeSelector" not in head
    assert {d["metadata"]["namespace"] for d in docs} == {"serving"}
    assert worker["containers"][0]["image"] == "reg/lorag:2"
    assert rayservice_errors(_by_kind(docs)["RayService"]) == []


def test_cpu_settings_render_a_cpu_worker_group():
    docs = _render_cli("--settings", str(ROOT / "deploy" / "k8s" / "cpu.yaml"))
    _, worker = _pods(docs)
    assert set(worker["containers"][0]["resources"]["limits"]) == {"cpu", "memory"}
    deps = {d["name"]: d for d in _serve_config(docs)["applications"][0]["deployments"]}
    assert deps["LLM:smollm2"]["ray_actor_options"]["num_gpus"] == 0
    assert rayservice_errors(_by_kind(docs)["RayService"]) == []


def test_every_container_reads_the_secret_and_the_serve_settings(tmp_path):
    env_file = tmp_path / "secrets.env"
    env_file.write_text("# credentials\nHF_TOKEN=hf_abc\nAWS_SECRET_ACCESS_KEY=a=b\n")
    docs = _render_cli("--secret-env-file", str(env_file))
    secret = _by_kind(docs)["Secret"]
    assert secret["stringData"] == {"HF_TOKEN": "hf_abc", "AWS_SECRET_ACCESS_KEY": "a=b"}
    validate_core(secret)
    for pod in _pods(docs):
        (container,) = pod["containers"]
        assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"],
                                                       "optional": True}}]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
        assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
        # A reload's old HAProxy lets requests run their whole request_timeout_s (600 s).
        assert env["RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S"] == "630"


def test_probes_check_ray_and_workers_check_the_serve_proxy(docs):
    head, worker = _pods(docs)
    for pod in (head, worker):
        (container,) = pod["containers"]
        for probe in ("livenessProbe", "readinessProbe"):
            assert "local_raylet_healthz" in container[probe]["exec"]["command"][-1]
    assert "/-/healthz" in worker["containers"][0]["readinessProbe"]["exec"]["command"][-1]
    assert "gcs_healthz" in head["containers"][0]["livenessProbe"]["exec"]["command"][-1]
    # The head must get ready before its Serve proxy exists (KubeRay submits then).
    assert "/-/healthz" not in head["containers"][0]["readinessProbe"]["exec"]["command"][-1]


def test_volume_and_config_reach_every_pod_with_pod_paths(docs):
    kinds = _by_kind(docs)
    claim = kinds["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for pod in _pods(docs):
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["lorag-data"]["persistentVolumeClaim"]["claimName"] == \
            claim["metadata"]["name"]
        assert volumes["lorag-config"]["configMap"]["name"] == kinds["ConfigMap"]["metadata"]["name"]
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts == {"lorag-config": "/etc/lorag", "lorag-data": "/var/lib/lorag",
                          "dshm": "/dev/shm"}
    pod_cfg = parse_config(yaml.safe_load(kinds["ConfigMap"]["data"]["config.yaml"]), "cm")
    assert pod_cfg.retrieval.data_dir == "/var/lib/lorag"
    assert pod_cfg.indexes["helix"].documents == "/app/evaluation/samples/helix/docs"
    assert pod_cfg.adapters["json-format"].source == "/app/adapters/samples/json-format"
    assert pod_cfg.adapter_store.local_roots == ["/app/adapters/samples",
                                                 "/var/lib/lorag/incoming"]


def test_paths_outside_the_repository_must_be_mapped(tmp_path):
    data = yaml.safe_load(DEFAULT.read_text())
    data["adapters"]["mine"] = {"source": str(tmp_path / "mine")}
    data["adapter_store"]["local_roots"].append(str(tmp_path))
    cfg = parse_config(data, "test", base_dir=DEFAULT.parent)
    with pytest.raises(ConfigError, match=r"adapters\.mine\.source"):
        render(cfg, KubeSettings())
    docs = render(cfg, KubeSettings(path_map={str(tmp_path): "/var/lib/lorag/incoming"}))
    pod_cfg = parse_config(yaml.safe_load(_by_kind(docs)["ConfigMap"]["data"]["config.yaml"]),
                           "cm")
    assert pod_cfg.adapters["mine"].source == "/var/lib/lorag/incoming/mine"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kustomize_base_builds(tmp_path):
    from serving.cli import main

    assert main(["k8s", "render", "--out", str(tmp_path / "base")]) == 0
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "resources: [../base]\nnamespace: prod\n"
        "images: [{name: 'lorag:0.1.0-gpu', newName: reg/lorag, newTag: '7'}]\n")
    out = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True,
                         text=True, check=True).stdout
    docs = list(yaml.safe_load_all(out))
    assert {d["metadata"]["namespace"] for d in docs} == {"prod"}
    ray_service = _by_kind(docs)["RayService"]
    assert rayservice_errors(ray_service) == []
    _, worker = _pods(docs)
    assert worker["containers"][0]["image"] == "reg/lorag:7"


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    venv = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hadolint"
    return found or (str(venv) if venv.exists() else None)


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed")
@pytest.mark.parametrize("name", ["Dockerfile.gpu", "Dockerfile.cpu"])
def test_dockerfiles_pass_hadolint(name):
    result = subprocess.run([_hadolint(), "--failure-threshold", "info",
                             str(ROOT / "deploy" / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_any_config_change_changes_serve_config():
    data = yaml.safe_load(DEFAULT.read_text())
    before = _serve_config(render(parse_config(data, "a", base_dir=DEFAULT.parent),
                                  KubeSettings()))
    data["routes"][0]["sampling"] = {"temperature": 0.3}    # no deployment changes
    after = _serve_config(render(parse_config(data, "b", base_dir=DEFAULT.parent),
                                 KubeSettings()))
    assert before["applications"][0]["deployments"] == after["applications"][0]["deployments"]
    assert (before["applications"][0]["args"]["config_sha256"]
            != after["applications"][0]["args"]["config_sha256"])


def test_cli_prints_every_object(capsys):
    from serving.cli import main

    assert main(["k8s", "render", "--image", "reg/lorag:3"]) == 0
    kinds = [d["kind"] for d in yaml.safe_load_all(capsys.readouterr().out)]
    assert kinds == ["ConfigMap", "Secret", "PersistentVolumeClaim", "RayService"]


def _two_tenants(tmp_path: Path):
    """configs/two-tenants.yaml with a key file made by `lorag keys create`."""
    keys = tmp_path / "keys.yaml"
    for argv in (["--name", "ops", "--scope", "admin"],
                 ["--name", "team-a", "--filter", '{"tenant": "a"}', "--manages-index",
                  "shared"]):
        args = build_parser().parse_args(["keys", "create", "--file", str(keys), *argv])
        assert args.func(args) == 0
    path = ROOT / "configs" / "two-tenants.yaml"
    data = yaml.safe_load(path.read_text())
    data["server"]["auth"]["keys_file"] = str(keys)
    return parse_config(data, "two-tenants", base_dir=path.parent), keys


def test_two_tenant_render_mounts_the_key_file_secret_whole(tmp_path, capsys):
    config, keys = _two_tenants(tmp_path)
    capsys.readouterr()
    docs = render(config, KubeSettings(image="reg/lorag:1"))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Secret", "Secret",
                                         "PersistentVolumeClaim", "RayService"]
    key_secret = docs[2]
    validate_core(key_secret)
    assert key_secret["metadata"]["name"] == "lorag-keys"
    assert key_secret["stringData"]["keys.yaml"] == keys.read_text()
    assert "sk-lorag-" not in keys.read_text()          # digests only
    pod_cfg = yaml.safe_load(docs[0]["data"]["config.yaml"])
    assert pod_cfg["server"]["auth"]["keys_file"] == "/etc/lorag/keys/keys.yaml"
    assert pod_cfg["server"]["auth"]["enabled"] is True
    for pod in _pods(docs):
        mounts = pod["containers"][0]["volumeMounts"]
        mount = next(m for m in mounts if m["name"] == "lorag-keys")
        # mounted whole (a subPath mount would never see the Secret's updates)
        assert mount["mountPath"] == "/etc/lorag/keys" and "subPath" not in mount
        assert {"name": "lorag-keys", "secret": {"secretName": "lorag-keys",
                                                  "defaultMode": 0o440}} in pod["volumes"]
    assert rayservice_errors(_by_kind(docs)["RayService"]) == []
    missing = config.model_copy(update={"server": config.server.model_copy(update={
        "auth": config.server.auth.model_copy(update={"keys_file": str(tmp_path / "no")})})})
    with pytest.raises(ConfigError, match="keys_file"):
        render(missing, KubeSettings(image="reg/lorag:1"))


def test_multi_node_retrieval_pins_only_the_writer_and_gives_copies_local_disk():
    """configs/multi-node.yaml: the writer on the head (the volume's node), the retriever's
    replicas anywhere, each pod with an emptyDir for their copies; no retrieval volume is
    shared across nodes."""
    from serving.k8s_serve import INDEX_STORE_RESOURCE, REPLICA_MOUNT_DIR

    docs = render(load_config(ROOT / "configs" / "multi-node.yaml"),
                  KubeSettings(image="reg/lorag:1"))
    assert rayservice_errors(_by_kind(docs)["RayService"]) == []
    deployments = {d["name"]: d for d in _serve_config(docs)["applications"][0]["deployments"]}
    writer = deployments["RetrieverWriter"]
    assert writer["num_replicas"] == 1
    assert writer["ray_actor_options"]["resources"] == {INDEX_STORE_RESOURCE: 1}
    assert INDEX_STORE_RESOURCE not in deployments["Retriever"]["ray_actor_options"].get(
        "resources", {})
    assert deployments["Retriever"]["num_replicas"] == 2
    for pod in _pods(docs):
        assert {"name": "lorag-replicas", "emptyDir": {}} in pod["volumes"]
        mounts = pod["containers"][0]["volumeMounts"]
        assert {"name": "lorag-replicas", "mountPath": REPLICA_MOUNT_DIR} in mounts
    pod_config = yaml.safe_load(next(iter(_by_kind(docs)["ConfigMap"]["data"].values())))
    assert pod_config["retrieval"]["storage"] == "replicated"
    assert pod_config["retrieval"]["replica_dir"] == REPLICA_MOUNT_DIR
    # the shared mode keeps its retriever on the head and has no copies' volume
    shared = render(load_config(DEFAULT), KubeSettings(image="reg/lorag:1"))
    deployments = {d["name"]: d for d in _serve_config(shared)["applications"][0]["deployments"]}
    assert "RetrieverWriter" not in deployments
    assert deployments["Retriever"]["ray_actor_options"]["resources"] == {
        INDEX_STORE_RESOURCE: 1}
    assert all(v["name"] != "lorag-replicas" for pod in _pods(shared) for v in pod["volumes"])
