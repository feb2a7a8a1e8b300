"""The engine watchdog ends an engine's processes when their replica is killed outright,
and leaves by itself when the engine stops normally."""

import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

# A stand-in replica: one child (the "engine core"), then the watchdog over it.
REPLICA = f"""
import subprocess, sys, time
sys.path.insert(0, {str(ROOT)!r})
engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
from serving.engine_watchdog import start_for_children
watchdog = start_for_children()
print(engine.pid, watchdog.pid, flush=True)
if sys.argv[1] == "normal":
    engine.terminate(); engine.wait()
time.sleep(300)
"""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return gone(pid)


def start(mode: str) -> tuple[subprocess.Popen, int, int]:
    replica = subprocess.Popen([sys.executable, "-c", REPLICA, mode], stdout=subprocess.PIPE,
                               text=True)
    engine, watchdog = map(int, replica.stdout.readline().split())
    return replica, engine, watchdog


def test_killed_replica_takes_its_engine_down():
    replica, engine, watchdog = start("kill")
    try:
        time.sleep(1.5)
        assert not gone(engine)
        replica.kill()              # kill -9: no shutdown path runs
        replica.wait()
        assert wait_gone(engine), "the orphaned engine process is still running"
        assert wait_gone(watchdog)
    finally:
        for pid in (engine, watchdog):
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()


def test_watchdog_leaves_when_the_engine_stops_normally():
    replica, engine, watchdog = start("normal")
    try:
        assert wait_gone(watchdog), "the watchdog outlived the engine it watched"
        assert replica.poll() is None   # and it did not touch the replica
    finally:
        replica.kill()
        replica.wait()
