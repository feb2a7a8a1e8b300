"""Per-route scaling: the whole app built from a config, on Ray Serve, with a fake engine.

A route with its own `deployment` gets an `LLM:<model>:<route>` deployment with
exactly the replicas / autoscaling of its config, its requests go there, and
the other routes stay on the model's shared deployment. GET /v1/deployments
reports what Ray Serve runs.
"""

import os
import time

import httpx
import pytest

from serving.config import parse_config
from serving.envelope import ok
from tests.serve.fakes import FakeLLMServerBase, serve_app

pytestmark = pytest.mark.own_cluster  # see tests/conftest.py


class FakeLLMServer(FakeLLMServerBase):
    """Answers every chat with the deployment that served it (no engine)."""

    async def chat(self, request, prompt=None):
        yield ok({"object": "chat.completion", "model": request.model, "choices": [],
                  "served_names": self.served_names, "replica": os.getpid()})


CONFIG = {
    "server": {"app_name": "scaling", "ingress": {"deployment": {"num_cpus": 0.1}},
               "auth": {"enabled": False}},
    "models": {"smol": {"source": "fake", "engine": {"enable_lora": False},
                        "deployment": {"num_replicas": 1, "num_cpus": 0.1}}},
    "retrieval": {"deployment": {"num_replicas": 1, "num_cpus": 0.1}},
    "routes": [
        {"name": "base", "model": "smol"},
        {"name": "busy", "model": "smol",
         "deployment": {"num_replicas": 2, "num_cpus": 0.1}},
        {"name": "elastic", "model": "smol",
         "deployment": {"num_cpus": 0.1, "autoscaling_config": {
             "min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 4}}},
    ],
}


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with serve_app(parse_config(CONFIG), FakeLLMServer, "scaling",
                   str(tmp_path_factory.mktemp("data"))) as url:
        _warm_up(url)
        yield url


def _warm_up(url: str) -> None:
    # A handle's first call waits for its router: seconds on a quiet machine, minutes on
    # a loaded one (171 s measured with a training job and a load test running). Warm
    # every route's router up before the tests time single requests.
    deadline = time.monotonic() + 600
    for model in ("base", "busy", "elastic"):
        while True:
            try:
                if httpx.post(f"{url}/v1/chat/completions", timeout=300, json={
                        "model": model, "messages": [{"role": "user", "content": "hi"}]}
                              ).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"route {model} never answered"


def test_deployments_match_the_config(app_url):
    body = httpx.get(f"{app_url}/v1/deployments", timeout=60).json()
    deps = {d["name"]: d for d in body["data"]}
    assert {"LLM:smol", "LLM:smol:busy", "LLM:smol:elastic", "Ingress", "Retriever",
            "AdapterRegistry"} <= set(deps)
    assert deps["LLM:smol"]["routes"] == ["base"]
    assert deps["LLM:smol"]["replicas"] == {"RUNNING": 1}
    assert deps["LLM:smol:busy"]["routes"] == ["busy"]
    assert deps["LLM:smol:busy"]["num_replicas"] == 2
    assert deps["LLM:smol:busy"]["replicas"] == {"RUNNING": 2}
    elastic = deps["LLM:smol:elastic"]
    assert elastic["autoscaling_config"]["min_replicas"] == 1
    assert elastic["autoscaling_config"]["max_replicas"] == 3
    assert elastic["autoscaling_config"]["target_ongoing_requests"] == 4
    assert elastic["replicas"] == {"RUNNING": 1}
    assert deps["LLM:smol:busy"]["ray_actor_options"]["num_cpus"] == 0.1


def test_each_route_is_served_by_its_own_deployment(app_url):
    def ask(model):
        r = httpx.post(f"{app_url}/v1/chat/completions", timeout=60, json={
            "model": model, "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        return r.json()

    assert ask("base")["served_names"] == ["base"]
    assert ask("elastic")["served_names"] == ["elastic"]
    replicas = {ask("busy")["replica"] for _ in range(40)}
    assert ask("busy")["served_names"] == ["busy"]
    assert len(replicas) == 2  # both replicas of the busy route take requests


def test_models_list_shows_route_composition(app_url):
    models = {m["id"]: m for m in httpx.get(f"{app_url}/v1/models", timeout=60).json()["data"]}
    assert models["busy"]["lorag"]["deployment"] == "LLM:smol:busy"
    assert models["base"]["lorag"]["deployment"] == "LLM:smol"
    assert models["base"]["lorag"]["adapter"] is None
    assert models["base"]["lorag"]["retrieval"] is None
