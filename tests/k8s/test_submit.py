"""The rendered serveConfigV2 on a real Ray cluster, submitted as KubeRay submits it.

KubeRay's operator PUTs `serveConfigV2` (as JSON) to the head's dashboard at
`/api/serve/applications/` and polls the same path for the application's status. Here
the cluster is a local one (CPU, vLLM's CPU engine, the default model), the pods'
environment is the rendered head container's, and the ConfigMap's config.yaml is a
local file rendered with the repository and a temporary folder as the pods' paths.
"""

from __future__ import annotations

import json
import os
import time

import httpx
import openai
import pytest
import yaml
from openai import OpenAI

from lorag_core.ports import free_port
from serving.auth import new_key
from serving.config import load_config
from serving.k8s import KubeSettings, StorageSettings, render
from serving.k8s_serve import INDEX_STORE_RESOURCE, INDEX_STORE_SLOTS
from tests.k8s.ray_cluster import LocalRayCluster
from tests.k8s.schemas import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.own_cluster]
READY_TIMEOUT_S = float(os.environ.get("LORAG_TEST_STARTUP_TIMEOUT_S", "900"))


def _app_status(dashboard: str) -> tuple[str | None, str]:
    body = httpx.get(f"{dashboard}/api/serve/applications/", timeout=30).json()
    app = (body.get("applications") or {}).get("lorag")
    return (app["status"], app.get("message", "")) if app else (None, "")


def _wait_http_ready(url: str, cluster: LocalRayCluster, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            healthz = httpx.get(f"{url}/-/healthz", timeout=10)
            health = httpx.get(f"{url}/health", timeout=10)
            if healthz.status_code == health.status_code == 200:
                return
            last = f"/-/healthz {healthz.status_code}, /health {health.status_code}: {health.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(1)
    raise AssertionError(f"{url} not serving {timeout_s:.0f}s after RUNNING ({last})\n"
                         f"{cluster.tail()}")


def test_rendered_serve_config_deploys_through_the_dashboard_and_answers(tmp_path):
    from ray.serve.schema import ServeDeploySchema

    data = tmp_path / "data"       # the persistent volume
    settings = KubeSettings(app_dir=str(ROOT), llm_num_gpus=0,
                            storage=StorageSettings(mount_path=str(data)))
    docs = {d["kind"]: d for d in render(load_config(ROOT / "configs" / "default.yaml"),
                                         settings)}
    config_file = tmp_path / "etc-lorag" / "config.yaml"     # the mounted ConfigMap
    config_file.parent.mkdir()
    config_file.write_text(docs["ConfigMap"]["data"]["config.yaml"])
    spec = docs["RayService"]["spec"]
    serve_doc = yaml.safe_load(spec["serveConfigV2"])
    ServeDeploySchema.model_validate(serve_doc)
    serve_doc["applications"][0]["args"]["config"] = str(config_file)
    port = free_port()
    serve_doc["http_options"].update(host="127.0.0.1", port=port)   # loopback only here

    head = spec["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    # The pods require API keys; they come from the Secret as $LORAG_API_KEYS.
    assert yaml.safe_load(docs["ConfigMap"]["data"]["config.yaml"])["server"]["auth"]["enabled"]
    api_key = new_key()
    env = {**os.environ, **{e["name"]: e["value"] for e in head["env"]},
           "LORAG_API_KEYS": json.dumps([{"name": "ops", "scopes": ["admin"], "key": api_key}]),
           # HAProxy's stats and metrics ports are fixed per node (8404, 9101); the
           # session's e2e server may hold them on this machine.
           "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
           "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
           # As in a pod: `ray start` turns Ray's token auth on only where a token file
           # exists (~/.ray/auth_token, which a local `ray.init` leaves here); a fresh
           # pod has none, and KubeRay's calls to the dashboard carry none.
           "RAY_AUTH_MODE": "disabled"}
    cluster = LocalRayCluster(env, num_cpus=2,
                              resources={INDEX_STORE_RESOURCE: INDEX_STORE_SLOTS},
                              log_path=tmp_path / "ray-driver.log")
    try:
        cluster.start()
        put = httpx.put(f"{cluster.dashboard_url}/api/serve/applications/", json=serve_doc,
                        timeout=120)
        # Who answered, if not the dashboard's Serve module (a 405 was seen once, never
        # reproduced): the server header, the allowed methods, and the cluster's log.
        assert put.status_code == 200, (
            f"{put.status_code} from {put.headers.get('server')!r} (allow: "
            f"{put.headers.get('allow')!r}): {put.text}\n{cluster.tail()}")
        deadline = time.monotonic() + READY_TIMEOUT_S
        status, message = _app_status(cluster.dashboard_url)
        while status != "RUNNING" and time.monotonic() < deadline:
            assert status not in ("DEPLOY_FAILED", "UNHEALTHY"), message
            time.sleep(3)
            status, message = _app_status(cluster.dashboard_url)
        assert status == "RUNNING", f"{status}: {message}\n{cluster.tail()}"
        # RUNNING is the controller's view; the HTTP route (HAProxy's backend, reloaded
        # from the controller's routing table) follows a moment later. KubeRay's own
        # readiness probe waits on the same endpoint before the Service sends traffic.
        _wait_http_ready(f"http://127.0.0.1:{port}", cluster)

        anonymous = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=60)
        assert anonymous.status_code == 401, anonymous.text
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=api_key,
                        max_retries=0, timeout=300)
        started = time.monotonic()
        try:
            reply = client.chat.completions.create(
                model="base", max_tokens=8, temperature=0,
                messages=[{"role": "user", "content": "What is the capital of France?"}])
        except openai.APIConnectionError as err:   # show the cluster's side of it
            raise AssertionError(f"first chat failed after {time.monotonic() - started:.0f}s:"
                                 f" {err!r} ({err.__cause__!r})\n{cluster.tail()}") from err
        assert reply.choices[0].message.content
        assert reply.usage.completion_tokens > 0
        # No keep-alive connection left open: an old HAProxy process outlives a reload
        # until its connections close, and would count as left behind.
        client.close()
        # The retriever (pinned to the head's custom resource) seeded the index from the
        # ConfigMap's documents path onto the volume.
        index = httpx.get(f"http://127.0.0.1:{port}/v1/indexes/helix", timeout=60,
                          headers={"Authorization": f"Bearer {api_key}"}).json()
        assert index["documents"] > 0
        assert (data / "indexes" / "helix").is_dir()

        # As KubeRay's `kubectl delete rayservice` ends: Serve shut down, then the pods.
        delete = httpx.delete(f"{cluster.dashboard_url}/api/serve/applications/", timeout=120)
        assert delete.status_code == 200, delete.text
    finally:
        leftovers = cluster.stop()
    assert leftovers == [], f"processes left behind (ended by PID): {leftovers}"
