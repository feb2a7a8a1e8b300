"""Shared fixtures. The e2e server starts once per session and only if an e2e test runs."""

import os
import socket
import sys
from pathlib import Path

import pytest

from loadtest.servers import running

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = float(os.environ.get("LORAG_TEST_STARTUP_TIMEOUT_S", "900"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """Start the real server (Ray Serve + vLLM on CPU + SmolLM2) with the default config."""
    if url := os.environ.get("LORAG_TEST_URL"):  # reuse a server someone already started
        yield url.rstrip("/")
        return
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "lorag-serve.log"
    env = {**os.environ, "LORAG_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
    cmd = [sys.executable, "-m", "serving.cli", "serve", "--config",
           str(ROOT / "configs" / "default.yaml"), "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    try:
        with running(cmd, url, log_path, STARTUP_TIMEOUT_S, env=env, cwd=ROOT):
            yield url
    except (RuntimeError, TimeoutError) as err:
        pytest.fail(f"lorag serve did not come up: {err}")
