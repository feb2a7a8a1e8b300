"""LLM deployment on Ray Serve with a fake engine: adapter affinity and LRU eviction.

The real engine is covered end to end in tests/e2e; here two replicas fit on
a 2-core machine, so Ray Serve's routing of adapter requests can be observed.
"""

import asyncio
import os
from types import SimpleNamespace

import pytest

from lorag_core.ports import free_port
from serving.envelope import ok, unwrap
from serving.lora import AdapterSlots
from tests.serve.fakes import FakeLLMServerBase, start_local_ray

pytestmark = pytest.mark.own_cluster  # see tests/conftest.py


class FakeEngine:
    def __init__(self):
        self.loaded: set[int] = set()

    async def add_lora(self, request):
        self.loaded.add(request.lora_int_id)

    async def remove_lora(self, lora_id):
        self.loaded.discard(lora_id)


class FakeLLMServer(FakeLLMServerBase):
    """Stands in for LLMServer: same adapter slots, answers who served the request."""

    async def start(self):
        self.engine = FakeEngine()
        self.adapters = AdapterSlots(self.engine, {})

    async def chat(self, request, prompt=None):
        await asyncio.sleep(0.01)
        yield ok({"replica": os.getpid(), "model": request.model,
                  "engine_loras": sorted(self.engine.loaded)})


def record(name, lora_int_id):
    return {"name": name, "version": "1", "served_id": f"{name}@1",
            "lora_int_id": lora_int_id, "path": "/unused"}


@pytest.fixture(scope="module")
def serve_instance():
    import ray
    from ray import serve

    port = free_port()
    start_local_ray(num_cpus=4, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield serve
    serve.shutdown()
    ray.shutdown()


def deploy(serve, name, replicas):
    from serving.ingress import LLMDeployment

    config = {"source": "fake", "engine": {"max_loras": 2}}
    # Affinity holds while the holding replica has room (max_ongoing_requests);
    # past that Ray Serve spills requests to other replicas, which then load it.
    app = (serve.deployment(LLMDeployment)
           .options(name=name, num_replicas=replicas, max_ongoing_requests=64,
                    ray_actor_options={"num_cpus": 0.5})
           .bind("fake", config, ["base"], FakeLLMServer))
    return serve.run(app, name=name, route_prefix=None)


async def ask(handle, rec):
    stream = handle.options(stream=True, multiplexed_model_id=rec["served_id"]).chat.remote(
        SimpleNamespace(model=rec["name"]), rec)
    return unwrap([item async for item in stream][0])


async def stuck_to_first_replica(handle) -> bool:
    """Load adapters a and b (one request each), then send 12 concurrent requests
    for each: did every one reach the replica that loaded its adapter?"""
    recs = [record("a", 1), record("b", 2)]
    first = {r["name"]: await ask(handle, r) for r in recs}
    await asyncio.sleep(3)  # replicas report their loaded adapters to the router
    stuck = True
    for rec in recs:
        replies = await asyncio.gather(*(ask(handle, rec) for _ in range(12)))
        assert {r["model"] for r in replies} == {rec["served_id"]}
        stuck &= {r["replica"] for r in replies} == {first[rec["name"]]["replica"]}
    return stuck


async def test_adapter_requests_stick_to_the_replica_that_loaded_it(serve_instance):
    # Ray Serve's affinity is best effort: when the router's queue-length probe of the
    # holding replica misses its 0.1 s deadline (a loaded CI machine), the retry goes to
    # the replica with the fewest adapters, which loads it too, and from then on both
    # serve it (CI failed once so). So a run on a fresh deployment may spill; routing
    # that ignored adapters would put all 24 requests on the loading replicas with
    # odds of 2**-24 per run, so three fresh runs still tell the two apart.
    for attempt in range(3):
        name = f"affinity{attempt}"
        if await stuck_to_first_replica(deploy(serve_instance, name, replicas=2)):
            return
        serve_instance.delete(name)
    pytest.fail("adapter requests spilled to a second replica on 3 fresh deployments")


async def test_least_recently_used_adapter_is_unloaded_from_the_engine(serve_instance):
    handle = deploy(serve_instance, "lru", replicas=1)
    for i, name in enumerate(["x", "y", "z"], start=1):
        reply = await ask(handle, record(name, i))
    await asyncio.sleep(0.5)
    reply = await ask(handle, record("z", 3))
    assert reply["engine_loras"] == [2, 3]  # x was evicted: max_loras = 2 per replica
