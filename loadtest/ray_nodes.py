"""A Ray cluster of several nodes on this machine, made with `ray start` as on real hosts:
a head and workers, each node with its own environment (its own LORAG_DATA_DIR) and a
custom resource named after it to pin replicas. A node can be killed (SIGKILL of its
raylet and everything under it, as when a host dies) and started again.

Only this cluster's processes are touched: they are found by the cluster's own temporary
folder in their command lines, so a `make serve` running beside the tests is left alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from lorag_core.ports import free_port

__all__ = ["RayNodes"]

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))
# Dead nodes are noticed after period x threshold (Ray's defaults: 5 s x 5, here ~3 s).
HEAD_ENV = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3",
            "RAY_health_check_initial_delay_ms": "1000"}


class RayNodes:
    def __init__(self, num_cpus: int = 4):
        # Short: Ray's socket paths under it must stay below 108 characters.
        self.temp_dir = tempfile.mkdtemp(prefix="lorag-ray-", dir="/tmp")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.num_cpus = num_cpus
        self.envs: dict[str, dict[str, str]] = {}

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        # RAY_AUTH_MODE: `ray start` turns Ray's token auth on wherever a token file exists
        # (~/.ray/auth_token, which any local `ray.init` leaves behind); this cluster runs
        # without it, the same on a fresh machine and after other clusters.
        return {**os.environ, "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0",
                "RAY_AUTH_MODE": "disabled", **extra}

    def _start(self, args: list[str], env: dict[str, str]) -> None:
        done = subprocess.run([RAY, "start", *args, f"--num-cpus={self.num_cpus}",
                               "--disable-usage-stats"], env=env, capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"ray start {args}: {done.stdout}\n{done.stderr}")

    def start(self, name: str, env: dict[str, str]) -> None:
        """Start node `name` (the first one started is the head) with resource {name: 1}."""
        self.envs[name] = env
        resources = f'--resources={{"{name}": 1}}'
        if len(self.envs) == 1:
            self._start(["--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}",
                         "--include-dashboard=false", resources],
                        self._env({**HEAD_ENV, **env}))
        else:
            self._start([f"--address={self.address}", resources], self._env(env))

    def restart(self, name: str) -> None:
        self._start([f"--address={self.address}", f'--resources={{"{name}": 1}}'],
                    self._env(self.envs[name]))

    def _raylet(self, name: str) -> psutil.Process:
        for proc in self._processes():
            line = " ".join(proc.info["cmdline"] or [])
            if proc.info["name"] == "raylet" and f"{name},1" in line:
                return proc
        raise LookupError(f"no raylet of node {name}")

    def kill(self, name: str) -> None:
        """SIGKILL node `name`: its raylet and every process under it (its replicas)."""
        raylet = self._raylet(name)
        for proc in [raylet, *raylet.children(recursive=True)]:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass

    def _processes(self) -> list[psutil.Process]:
        mine = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            if self.temp_dir in line or (self.address in line and "ray" in line):
                mine.append(proc)
        return mine

    def stop(self) -> None:
        """Kill the whole cluster (every process of it, workers included)."""
        procs = self._processes()
        for proc in procs:
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    p.send_signal(signal.SIGKILL)
                except psutil.NoSuchProcess:
                    pass
        psutil.wait_procs(procs, timeout=10)
        time.sleep(0.5)
        if not os.environ.get("LORAG_KEEP_RAY_LOGS"):
            shutil.rmtree(self.temp_dir, ignore_errors=True)
