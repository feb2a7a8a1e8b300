"""Ends a vLLM engine's processes when the replica that started them dies.

vLLM runs its engine core (and, on GPUs, its workers) in child processes and
stops them from the parent's shutdown path. A replica killed outright (SIGKILL,
the OOM killer, a node agent) never runs that path, and its engine core lives on
as an orphan holding the model's memory (~3 GB for the 135M model on CPU, a
whole GPU on a GPU node), so the replacement replica may not fit. The watchdog is
a small process started next to the engine: it polls its parent once a second
and, when the parent is gone, terminates the engine processes it was given
(SIGTERM, then SIGKILL after a grace period). It exits by itself when the
engine's processes are gone (a normal shutdown).

    python -m serving.engine_watchdog <parent pid> <pid>:<create time> ...
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

__all__ = ["POLL_S", "GRACE_S", "watch", "start_for_children", "main"]

POLL_S = 1.0
GRACE_S = 5.0


def _same(pid: int, created: float) -> psutil.Process | None:
    """The process `pid` if it is still the one started at `created` (no PID reuse)."""
    try:
        proc = psutil.Process(pid)
        return proc if abs(proc.create_time() - created) < 0.01 else None
    except psutil.Error:
        return None


def watch(parent: int, parent_created: float, targets: list[tuple[int, float]]) -> int:
    while True:
        alive = [p for p in (_same(pid, t) for pid, t in targets) if p is not None]
        if not alive:
            return 0
        if _same(parent, parent_created) is None:
            break
        time.sleep(POLL_S)
    for proc in alive:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(alive, timeout=GRACE_S)
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass
    print(f"engine watchdog: replica {parent} died; ended engine processes "
          f"{[p.pid for p in alive]}", file=sys.stderr, flush=True)
    return 0


def start_for_children() -> subprocess.Popen | None:
    """Start a watchdog over this process's current children (the engine's processes)."""
    me = psutil.Process()
    children = me.children(recursive=True)
    if not children:
        return None
    args = [f"{c.pid}:{c.create_time()!r}" for c in children]
    return subprocess.Popen(
        [sys.executable, "-m", "serving.engine_watchdog", str(me.pid), repr(me.create_time()),
         *args],
        stdin=subprocess.DEVNULL, close_fds=True,
        # Its own session: a signal to the replica's process group does not reach it.
        start_new_session=True)


def main(argv: list[str]) -> int:
    parent, parent_created = int(argv[0]), float(argv[1])
    targets = []
    for item in argv[2:]:
        pid, _, created = item.partition(":")
        targets.append((int(pid), float(created)))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C of a terminal: the parent decides
    return watch(parent, parent_created, targets)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
