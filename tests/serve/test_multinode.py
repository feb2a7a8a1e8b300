"""Retrieval past one node: `retrieval.storage: replicated` on a real two-node Ray cluster.

Two nodes on this machine, started with `ray start --head` and `ray start --address`,
each with its own data folder (LORAG_DATA_DIR; nothing shared) and a custom resource
naming it. The ingress is pinned to node a, the retrieval writer to node b, and one
retriever replica runs on each node (`max_replicas_per_node: 1`). Through the HTTP API:
ingest, search through both replicas (`served_by` names the node), kill node b (the
writer's) in the middle of an ingestion, keep searching on node a, start node b again,
and check that every acknowledged document is there and that node b's replica caught up
from its own copy rather than copying the index again.
"""

import threading
import time

import httpx
import pytest

from serving.config import parse_config
from tests.serve.fakes import FakeLLMServerBase
from loadtest.ray_nodes import RayNodes

pytestmark = pytest.mark.own_cluster  # see tests/conftest.py

INDEX = "notes"


def config() -> dict:
    on_a = {"num_replicas": 1, "num_cpus": 0.1, "resources": {"node_a": 0.01}}
    return {
        "server": {"app_name": "multinode", "auth": {"enabled": False},
                   "ingress": {"deployment": on_a, "request_timeout_s": 60}},
        "models": {"smol": {"source": "builtin:smollm2-135m-instruct", "deployment": on_a}},
        "adapter_store": {"num_cpus": 0.1},
        "indexes": {INDEX: {"type": "flat"}},
        "retrieval": {
            "storage": "replicated", "sync_interval_s": 0.5, "query_encoder": "onnx",
            "deployment": {"num_replicas": 2, "num_cpus": 0.1, "max_replicas_per_node": 1},
            "writer": {"num_replicas": 1, "num_cpus": 0.1, "resources": {"node_b": 0.01}}},
        "routes": [{"name": "base", "model": "smol"}],
    }


def note(i: int) -> dict:
    return {"doc_id": f"note-{i}",
            "text": f"Note {i}: the meeting about project {i} moved to room {i % 7}."}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    import ray
    from ray import serve

    from lorag_core.ports import free_port
    from serving.app import build_from_config

    work = tmp_path_factory.mktemp("multinode")
    nodes = RayNodes()
    try:
        nodes.start("node_a", {"LORAG_DATA_DIR": str(work / "a")})
        nodes.start("node_b", {"LORAG_DATA_DIR": str(work / "b")})
        ray.init(address=nodes.address, log_to_driver=False)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port,
                                  "location": "HeadOnly"})
        serve.run(build_from_config(parse_config(config()), llm_server_cls=FakeLLMServerBase),
                  name="multinode", route_prefix="/")
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: get(url, "/health").status_code == 200, 240, "healthy")
        yield {"url": url, "nodes": nodes, "node_of": node_names(), "work": work}
    finally:
        try:
            serve.shutdown()
        except Exception:  # noqa: BLE001 - the cluster may be half gone
            pass
        ray.shutdown()
        nodes.stop()


def node_names() -> dict[str, str]:
    """Node id -> the name of its custom resource, for the nodes alive now."""
    import ray

    return {n["NodeID"]: name for n in ray.nodes() if n["Alive"]
            for name in ("node_a", "node_b") if name in n["Resources"]}


def get(url, path, **kw):
    return httpx.get(f"{url}{path}", timeout=60, **kw)


def post(url, path, body, timeout=60):
    return httpx.post(f"{url}{path}", json=body, timeout=timeout)


def wait_for(check, seconds, what):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"not {what} after {seconds} s"
        time.sleep(0.5)


def search(url, query, top_k=1):
    r = post(url, f"/v1/indexes/{INDEX}/search", {"query": query, "top_k": top_k})
    assert r.status_code == 200, r.text
    return r.json()


def test_writes_are_read_on_replicas_of_both_nodes(cluster):
    url, node_of = cluster["url"], cluster["node_of"]
    for i in range(10):
        r = post(url, f"/v1/indexes/{INDEX}/documents", {"documents": [note(i)]})
        assert r.status_code == 200, r.text
        # read-your-writes: whichever replica answers has the document just acknowledged
        found = search(url, f"Note {i}: the meeting about project {i}")
        assert found["data"][0]["doc_id"] == f"note-{i}"
    seen = {}
    for _ in range(60):
        found = search(url, "meeting about project 3")
        assert found["data"][0]["doc_id"] == "note-3"
        seen[node_of[found["served_by"]["node_id"]]] = found["served_by"]
        if len(seen) == 2:
            break
    assert set(seen) == {"node_a", "node_b"}, seen
    assert all(s["role"] == "copy" for s in seen.values())
    # separate folders per node: nothing shared
    for node in ("a", "b"):
        assert list((cluster["work"] / node / "replicas").glob("slot-*/indexes/notes/"
                                                                "store.sqlite"))
    assert (cluster["work"] / "b" / "indexes" / INDEX / "store.sqlite").exists()
    assert not (cluster["work"] / "a" / "indexes").exists()


def ingest(url, start, acked, refused, stop):
    i = start
    while not stop.is_set():
        try:
            r = post(url, f"/v1/indexes/{INDEX}/documents", {"documents": [note(i)]},
                     timeout=30)
            (acked if r.status_code == 200 else refused).append((i, r.status_code))
        except httpx.HTTPError as err:
            refused.append((i, type(err).__name__))
        i += 1
        time.sleep(0.05)


def test_killing_the_writers_node_mid_ingestion_loses_no_acknowledged_document(cluster):
    url, nodes, node_of = cluster["url"], cluster["nodes"], cluster["node_of"]
    acked, refused, stop = [], [], threading.Event()
    writer = threading.Thread(target=ingest, args=(url, 1000, acked, refused, stop))
    writer.start()
    try:
        wait_for(lambda: len(acked) >= 15, 60, "15 documents acknowledged")
        nodes.kill("node_b")
        killed_at, acked_before = time.monotonic(), len(acked)
        # node a keeps answering searches from its copy while node b is down
        streak, answered = 0, set()
        while streak < 10:
            assert time.monotonic() - killed_at < 60, "node a stopped answering"
            r = post(url, f"/v1/indexes/{INDEX}/search", {"query": "meeting project 5"})
            if r.status_code == 200:
                streak += 1
                answered.add(node_of.get(r.json()["served_by"]["node_id"]))
            else:
                streak = 0
            time.sleep(0.2)
        assert answered == {"node_a"}
        wait_for(lambda: any(code == 503 for _, code in refused), 60, "writes refused")
        nodes.restart("node_b")
        wait_for(lambda: len(acked) >= acked_before + 10, 180, "writes acknowledged again")
    finally:
        stop.set()
        writer.join()
    print(f"\nacknowledged {len(acked)}, refused {len(refused)} (all 503) around the kill")
    assert {code for _, code in refused} <= {503}, refused
    # every acknowledged document is there, on replicas of both nodes
    for i, _ in acked:
        r = get(url, f"/v1/indexes/{INDEX}/documents/note-{i}")
        assert r.status_code == 200, (i, r.text)
    node_of, seen = node_names(), {}

    def both_answered():  # node b's replica starts again once its node is back
        stats = get(url, f"/v1/indexes/{INDEX}").json()
        seen[node_of[stats["served_by"]["node_id"]]] = stats
        return len(seen) == 2

    wait_for(both_answered, 180, "answered by replicas on both nodes")
    counts = {s["documents"] for s in seen.values()}
    assert len(counts) == 1, seen  # both copies agree
    # an unacknowledged write cut by the kill may have committed, or not
    assert 10 + len(acked) <= counts.pop() <= 10 + len(acked) + len(refused)
    restarted = seen["node_b"]["served_by"]
    assert restarted["copies_started"] == 0, restarted  # caught up from its own copy
    assert restarted["changes_pulled"] > 0
