"""Shared fixtures. The e2e server starts once per session and only if an e2e test runs."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = float(os.environ.get("LORAG_TEST_STARTUP_TIMEOUT_S", "900"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """Start the real server (Ray Serve + vLLM on CPU + SmolLM2) with the default config."""
    if url := os.environ.get("LORAG_TEST_URL"):  # reuse a server someone already started
        yield url.rstrip("/")
        return
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "lorag-serve.log"
    env = {**os.environ, "LORAG_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.cli", "serve", "--config",
         str(ROOT / "configs" / "default.yaml"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"lorag serve exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not healthy after {STARTUP_TIMEOUT_S}s:\n{_tail(log_path)}")
            time.sleep(2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
