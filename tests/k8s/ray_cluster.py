"""A local Ray cluster with its dashboard, as a KubeRay head pod runs it, for submitting
a rendered `serveConfigV2` through the dashboard's REST API.

Started with `ray start --head` on free ports and its own temp dir. Stopped without
`ray stop`, which would also end any other Ray on the machine (another test's server, a
benchmark): Serve is shut down through the dashboard (its replicas, their vLLM engine
processes, HAProxy), then this cluster's own processes - found by its temp dir - are
ended by PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ENGINE_AND_PROXY = ("EngineCore", "haproxy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_matching(*needles: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if any(n in cmdline or n in comm for n in needles):
            found.add(int(entry.name))
    return found


class LocalRayCluster:
    def __init__(self, env: dict[str, str], *, num_cpus: int, resources: dict[str, float],
                 log_path: Path):
        self.temp_dir = tempfile.mkdtemp(prefix="lorag-k8s-")   # short: Ray's socket paths
        self.dashboard_url = f"http://127.0.0.1:{free_port()}"
        self.log_path = log_path
        self._env = env
        self._cmd = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
            f"--port={free_port()}", f"--temp-dir={self.temp_dir}",
            "--include-dashboard=true", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard_url.rsplit(':', 1)[1]}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--ray-client-server-port={free_port()}",
            f"--num-cpus={num_cpus}", "--num-gpus=0",
            f"--resources={json.dumps(resources)}", "--disable-usage-stats",
        ]
        self._before = _pids_matching(*ENGINE_AND_PROXY)

    def start(self, timeout_s: float = 180) -> None:
        with open(self.log_path, "w") as log:
            subprocess.run(self._cmd, env=self._env, stdout=log, stderr=subprocess.STDOUT,
                           timeout=timeout_s, check=False)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.dashboard_url}/api/serve/applications/",
                             timeout=10).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(2)
        raise RuntimeError(f"the local Ray cluster's dashboard did not answer:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 60) -> list[int]:
        """Shut Serve and the cluster down; return PIDs of vLLM engine / HAProxy / Ray
        processes of this cluster still alive after a clean shutdown (then ended)."""
        try:   # serve.shutdown() in the dashboard: replicas, engines, proxies, controller
            httpx.delete(f"{self.dashboard_url}/api/serve/applications/", timeout=120)
        except httpx.HTTPError:
            pass
        ours = _pids_matching(self.temp_dir)
        for pid in ours:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout_s
        left = self._leftovers()
        while left and time.monotonic() < deadline:
            time.sleep(1)
            left = self._leftovers()
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return sorted(left)

    def _leftovers(self) -> set[int]:
        return (_pids_matching(*ENGINE_AND_PROXY) - self._before) | _pids_matching(self.temp_dir)
