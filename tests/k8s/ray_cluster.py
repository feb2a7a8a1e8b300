"""A local Ray cluster with its dashboard, owned by one driver process, for submitting a
rendered `serveConfigV2` through the dashboard's REST API as KubeRay does.

The driver starts the cluster (`ray.init(address="local")`) and, when told to stop,
shuts Serve down (replicas, their vLLM engine processes, HAProxy) and then the cluster
it started - only that one: `ray stop` would also end any other Ray on the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DRIVER = r"""
import json, sys
import ray
args = json.loads(sys.argv[1])
ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1",
         dashboard_port=args["dashboard_port"], num_cpus=args["num_cpus"], num_gpus=0,
         resources=args["resources"], _temp_dir=args["temp_dir"],
         logging_level="WARNING")
print("READY", flush=True)
sys.stdin.readline()
from ray import serve
try:
    serve.shutdown()
finally:
    ray.shutdown()
print("STOPPED", flush=True)
"""


def _pids_named(*needles: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if any(n in cmdline or n == comm for n in needles):
            found.add(int(entry.name))
    return found


ENGINE_AND_PROXY = ("EngineCore", "VLLM::EngineCore", "haproxy")


class LocalRayCluster:
    def __init__(self, env: dict[str, str], *, dashboard_port: int, num_cpus: int,
                 resources: dict[str, float], log_path: Path):
        self.temp_dir = tempfile.mkdtemp(prefix="lorag-k8s-")   # short: Ray's socket paths
        self.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        self.log_path = log_path
        self._args = {"dashboard_port": dashboard_port, "num_cpus": num_cpus,
                      "resources": resources, "temp_dir": self.temp_dir}
        self._env = env
        self._before = _pids_named(*ENGINE_AND_PROXY)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180) -> None:
        import json

        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-c", DRIVER, json.dumps(self._args)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env=self._env, text=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip() == "READY":
                return
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"the local Ray cluster did not start:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = 120) -> list[int]:
        """Stop Serve and the cluster; return PIDs of engine/HAProxy processes this
        cluster left behind (ended here, by PID) - empty when the shutdown was clean."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait(timeout=30)
        if getattr(self, "_log", None):
            self._log.close()
        deadline = time.monotonic() + 30
        left = _pids_named(*ENGINE_AND_PROXY, self.temp_dir) - self._before
        while left and time.monotonic() < deadline:
            time.sleep(1)
            left = _pids_named(*ENGINE_AND_PROXY, self.temp_dir) - self._before
        for pid in left:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        return sorted(left)
