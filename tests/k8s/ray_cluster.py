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
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from lorag_core.ports import free_port

ENGINE_AND_PROXY = ("EngineCore", "haproxy")


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
        """The driver log's last lines, then the last error lines of Serve's logs."""
        try:
            text = "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            text = ""
        errors = []
        for log in sorted(Path(self.temp_dir).glob("session_latest/logs/**/*.log")):
            try:
                errors += [f"{log.name}: {line}" for line in log.read_text(
                    errors="replace").splitlines() if " ERROR " in line or "Killed" in line]
            except OSError:
                continue
        return text + ("\n-- error lines of the cluster's logs --\n" + "\n".join(
            errors[-lines:]) if errors else "")

    def stop(self, grace_s: float = 16) -> list[int]:
        """Shut Serve down, then this cluster's Ray processes as `ray stop` does (SIGTERM,
        SIGKILL after `grace_s`). Returns the vLLM engine / HAProxy processes that
        outlived Serve's shutdown (then ended by PID): empty when it was clean."""
        # This cluster's processes, taken while the tree is whole: another server on the
        # machine (the e2e session's) starts engines and HAProxy processes of the same
        # names meanwhile - HAProxy re-execs itself on every reload - and is not ours.
        tree = _with_descendants(_pids_matching(self.temp_dir))
        try:   # serve.shutdown() in the dashboard: replicas, engines, proxies, controller
            httpx.delete(f"{self.dashboard_url}/api/serve/applications/", timeout=120)
        except httpx.HTTPError:
            pass
        orphans = self._wait_gone(
            lambda: (_pids_matching(*ENGINE_AND_PROXY) - self._before) & tree, timeout_s=60)
        ray_procs = _with_descendants(_pids_matching(self.temp_dir))
        _signal_all(ray_procs, signal.SIGTERM)
        left = self._wait_gone(lambda: ray_procs & _alive(), timeout_s=grace_s)
        _signal_all(left | orphans, signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return sorted(orphans)

    @staticmethod
    def _wait_gone(pids, timeout_s: float) -> set[int]:
        deadline = time.monotonic() + timeout_s
        left = pids()
        while left and time.monotonic() < deadline:
            time.sleep(1)
            left = pids()
        return left


def _alive() -> set[int]:
    return {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}


def _with_descendants(roots: set[int]) -> set[int]:
    """`roots` and every process below them (Ray's agents and workers)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found = set(roots)
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def _signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
