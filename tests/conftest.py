"""Shared fixtures. The e2e server starts once per session and only if an e2e test runs.

The session server serves the default config plus what the tests need: a
folder of test adapters as an allowed local root, a local S3 server (moto) as
the object store for s3:// adapter sources, and a route `rag-reranked` (the rag
route with `retrieval.rerank`, off in the default config).
"""

import os
import sys
from pathlib import Path

import pytest

from serving.local_server import running
from lorag_core.ports import free_port
from serving.config import dump_config, load_config, parse_config, with_adapter_roots
from tests.support import keys

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = float(os.environ.get("LORAG_TEST_STARTUP_TIMEOUT_S", "900"))
S3_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
          "AWS_DEFAULT_REGION": "us-east-1"}


def _run_order(item) -> int:
    if item.get_closest_marker("own_cluster"):
        return 0
    return 2 if item.get_closest_marker("faults") else 1


def pytest_collection_modifyitems(config, items):
    """Tests that start their own Ray cluster (`@pytest.mark.own_cluster`) run first,
    before the session server exists: two clusters, each with a vLLM engine, do not
    share CI's 2 cores and 24 GiB well. Fault tests (`@pytest.mark.faults`) kill the
    session server's replicas: they run after every other test, so that nothing else
    runs during a recovery. The sort is stable: otherwise the collection order."""
    items.sort(key=_run_order)
    if "slow" not in (config.getoption("markexpr") or ""):
        skip = pytest.mark.skip(reason="slow: run with -m slow")
        for item in items:
            if item.get_closest_marker("slow"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def s3_url():
    """A local S3-compatible server (moto's server mode) on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    os.environ.update(S3_ENV)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def adapter_root(tmp_path_factory) -> Path:
    """Where tests put adapters the server may load (an allowed local root)."""
    if os.environ.get("LORAG_TEST_URL"):
        return Path(os.environ.get("LORAG_TEST_ADAPTER_ROOT", "/tmp"))
    return tmp_path_factory.mktemp("adapters")


def write_test_config(path: Path, adapter_root: Path, s3_url: str) -> Path:
    cfg = with_adapter_roots(load_config(ROOT / "configs" / "default.yaml"), [str(adapter_root)],
                             {"s3": {"endpoint_url": s3_url}})
    data = cfg.model_dump(mode="json")
    data["server"]["auth"] = {"enabled": True, "keys": keys.config_keys(),
                              "reload_interval_s": 1}
    rag = next(r for r in data["routes"] if r["name"] == "rag")
    data["routes"].append({**rag, "name": "rag-reranked",
                           "description": "the rag route, reranking 8 candidates",
                           "retrieval": {**rag["retrieval"], "rerank": {"candidates": 8}}})
    return dump_config(parse_config(data, "tests"), path)


class Server:
    """The session's server; `restart()` stops it and starts it again on the same data."""

    def __init__(self, tmp_path_factory, adapter_root: Path, s3_url: str):
        work = tmp_path_factory.mktemp("server")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "lorag-serve.log"
        self.env = {**os.environ, **S3_ENV,
                    "LORAG_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
        config = write_test_config(work / "test.yaml", adapter_root, s3_url)
        self.cmd = [sys.executable, "-m", "serving.cli", "serve", "--config", str(config),
                    "--host", "127.0.0.1", "--port", str(self.port)]
        self._ctx = None

    def start(self) -> None:
        self._ctx = running(self.cmd, self.url, self.log_path, STARTUP_TIMEOUT_S,
                            env=self.env, cwd=ROOT)
        try:
            self.proc = self._ctx.__enter__()
        except (RuntimeError, TimeoutError) as err:
            pytest.fail(f"lorag serve did not come up: {err}")

    def stop(self) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def server(tmp_path_factory, adapter_root, s3_url):
    """Start the real server (Ray Serve + vLLM on CPU + SmolLM2) once per session."""
    if url := os.environ.get("LORAG_TEST_URL"):  # reuse a server someone already started
        reused = Server.__new__(Server)
        reused.url = url.rstrip("/")
        yield reused
        return
    # lorag's own clients the tests run (eval, ingest, locust) send $LORAG_API_KEY
    os.environ["LORAG_API_KEY"] = keys.ADMIN
    srv = Server(tmp_path_factory, adapter_root, s3_url)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server_url(server) -> str:
    return server.url
