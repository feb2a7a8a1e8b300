"""Start a server process, wait until /health answers, stop it (benchmarks and tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx


__all__ = ["wait_ready", "running"]


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready:\n"
                               f"{_tail(log_path)}")
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f}s:\n{_tail(log_path)}")


@contextmanager
def running(cmd: list[str], url: str, log_path: Path, timeout_s: float, *,
            env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run `cmd` in its own process group until the block ends; SIGINT, then SIGKILL."""
    log = log_path.open("w")
    print(f"starting: {' '.join(cmd)}\n  (log: {log_path})", flush=True)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=env, cwd=cwd)
    started = time.monotonic()
    try:
        wait_ready(url, proc, timeout_s, log_path)
        print(f"  ready after {time.monotonic() - started:.0f}s", flush=True)
        yield proc
    finally:
        _signal_group(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _signal_group(pid: int, sig: int) -> None:
    """Signal the server's process group; it may be gone already (a server that
    exited before it was ready), and that must not hide why it exited."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
