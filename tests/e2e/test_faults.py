"""Faults on the real server: kill -9 a replica under load and measure the recovery.

- The LLM replica, under a steady stream of chat requests: Ray Serve replaces it with no
  manual action; only the requests in flight at the kill may fail (503 in OpenAI's
  shape); requests sent during the recovery wait for the new replica and succeed. The
  killed replica's vLLM engine process must not outlive it (serving/engine_watchdog.py).
- The retriever, during ingestion: every document acknowledged (200) before, during or
  after the kill is still there afterwards.

The figures (recovery time, failed requests) are printed; these tests run after every
other test of the session (tests/conftest.py) since they take the server down.
"""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import psutil
import pytest

from tests.support.keys import AUTH

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

RECOVERY_TIMEOUT_S = 900


def replica_process(server, deployment: str) -> psutil.Process:
    """The replica actor's process among the server's descendants (Ray titles it
    `ray::ServeReplica:<app>:<deployment>`)."""
    if getattr(server, "proc", None) is None:
        pytest.skip("needs the session's own server (LORAG_TEST_URL is set)")
    found = []
    for proc in psutil.Process(server.proc.pid).children(recursive=True):
        try:
            title = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if f"ServeReplica:lorag:{deployment}" in title and "ray::" in title:
            found.append(proc)
    assert len(found) == 1, f"replicas of {deployment}: {[p.pid for p in found]}"
    return found[0]


class Stream:
    """`workers` threads sending requests back to back; records (start, end, status)."""

    def __init__(self, send, workers: int = 2):
        self.send, self.results, self.stop = send, [], threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(workers)]

    def _run(self, worker: int) -> None:
        with httpx.Client(timeout=RECOVERY_TIMEOUT_S, headers=AUTH) as client:
            n = 0
            while not self.stop.is_set():
                t0 = time.monotonic()
                try:
                    r = self.send(client, worker, n)
                    status, body = r.status_code, r.text
                except httpx.HTTPError as err:
                    status, body = 0, repr(err)
                with self.lock:
                    self.results.append((t0, time.monotonic(), status, body))
                n += 1

    def __enter__(self) -> Stream:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=RECOVERY_TIMEOUT_S)

    def ok_after(self, t: float) -> int:
        with self.lock:
            return sum(1 for start, _, status, _ in self.results if start > t and status == 200)

    def wait_ok_after(self, t: float, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.ok_after(t) < count:
            assert time.monotonic() < deadline, f"no recovery within {timeout:.0f}s"
            time.sleep(0.5)


def engine_processes(replica: psutil.Process) -> list[psutil.Process]:
    return [p for p in replica.children(recursive=True)
            if "serving.engine_watchdog" not in " ".join(p.cmdline())]


def test_killed_llm_replica_is_replaced_and_only_in_flight_requests_fail(server):
    def send(client, worker, n):
        return client.post(f"{server.url}/v1/chat/completions", json={
            "model": "base", "max_tokens": 4, "temperature": 0,
            "messages": [{"role": "user", "content": f"Say a number ({worker}-{n})."}]})

    replica = replica_process(server, "LLM:smollm2")
    engines = engine_processes(replica)
    assert engines, "the replica has no engine process"
    with Stream(send) as stream:
        stream.wait_ok_after(0, 4, timeout=300)
        killed_at = time.monotonic()
        in_flight = len(stream.threads)  # each worker always has one request out
        replica.kill()
        stream.wait_ok_after(killed_at, 3, timeout=RECOVERY_TIMEOUT_S)
    failed = [(s, e, st, b) for s, e, st, b in stream.results if st != 200]
    recovered = min(e for s, e, st, _ in stream.results if st == 200 and s > killed_at)
    print(f"\nLLM replica kill -9: first success {recovered - killed_at:.1f}s after the kill; "
          f"{len(failed)} failed of {len(stream.results)} requests (in flight: {in_flight})")
    assert len(failed) <= in_flight, failed
    for start, _, status, body in failed:
        assert start < killed_at, "a request sent after the kill failed"
        assert status == 503 and '"code":"replica_unavailable"' in body.replace(" ", ""), body
    # The killed replica's engine did not survive it (its memory is free for the new one).
    deadline = time.monotonic() + 30
    while any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in engines):
        assert time.monotonic() < deadline, f"orphaned engine processes: {engines}"
        time.sleep(0.5)
    assert httpx.get(f"{server.url}/health", timeout=60).status_code == 200


def test_killed_retriever_loses_no_acknowledged_document(server):
    index = f"faults-{uuid.uuid4().hex[:8]}"
    r = httpx.post(f"{server.url}/v1/indexes", json={"name": index}, timeout=120,
                   headers=AUTH)
    assert r.status_code == 201, r.text
    acked: list[str] = []
    lock = threading.Lock()

    def send(client, worker, n):
        doc_id = f"w{worker}-d{n}"
        r = client.post(f"{server.url}/v1/indexes/{index}/documents", json={"documents": [
            {"doc_id": doc_id, "text": f"Fault test document {doc_id}: the code is "
                                       f"{uuid.uuid4().hex}. " * 4}]})
        if r.status_code == 200:
            with lock:
                acked.append(doc_id)
        return r

    replica = replica_process(server, "Retriever")
    try:
        with Stream(send) as stream:
            stream.wait_ok_after(0, 5, timeout=300)
            killed_at = time.monotonic()
            replica.kill()
            stream.wait_ok_after(killed_at, 5, timeout=RECOVERY_TIMEOUT_S)
        failed = [(st, b) for s, e, st, b in stream.results if st != 200]
        recovered = min(e for s, e, st, _ in stream.results if st == 200 and s > killed_at)
        print(f"\nRetriever kill -9 during ingestion: first acknowledged write "
              f"{recovered - killed_at:.1f}s after the kill; {len(acked)} acknowledged, "
              f"{len(failed)} failed")
        assert len(failed) <= len(stream.threads), failed
        with httpx.Client(base_url=server.url, timeout=120, headers=AUTH) as client:
            missing = [d for d in acked
                       if client.get(f"/v1/indexes/{index}/documents/{d}").status_code != 200]
            assert missing == [], f"acknowledged documents lost: {missing}"
            hits = client.post(f"/v1/indexes/{index}/search",
                               json={"query": f"Fault test document {acked[-1]}",
                                     "top_k": 3}).json()["data"]
            assert hits, "the index answers no search after the restart"
    finally:
        httpx.delete(f"{server.url}/v1/indexes/{index}", timeout=120, headers=AUTH)
