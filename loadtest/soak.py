"""Soak run: the locust suite for a long time at one concurrency; errors and memory.

    python -m loadtest soak [--users 4] [--duration 30m] [--warmup 2m] [--config FILE]
        [--mix plain=4,rag=2,adapter=1,hybrid=1,admin=1] [--out results/soak]

Starts `lorag serve` with the config (its own Ray instance, its own data folder),
runs the suite once for --warmup (discarded: caches, compiled paths and the
allocator settle), then for --duration, sampling the resident memory (RSS, summed
over the server's whole process tree: driver, Ray, HAProxy, every replica and vLLM
engine) every --sample-every seconds. Reports the error rate with and without 429s
(rate limiting is an answer, not an error) and the memory at the start and the end
of the measured run. Writes `soak.json` and the run's locust files to --out; exits
1 when an error other than 429 happened or memory grew by more than --max-growth.

--users: the concurrency where throughput peaks (`python -m loadtest sweep`; 4 on
the 2-core CPU machine, see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from serving.local_server import running

ROOT = Path(__file__).resolve().parent.parent
SUITE_MIX = "plain=4,rag=2,adapter=1,hybrid=1,admin=1"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    p.add_argument("--users", type=int, default=4)
    p.add_argument("--duration", default="30m", help="measured run (locust duration)")
    p.add_argument("--warmup", default="2m", help="discarded run before it")
    p.add_argument("--mix", default=SUITE_MIX, help="user kinds and weights")
    p.add_argument("--max-tokens", default="64", help="answer length (tokens)")
    p.add_argument("--sample-every", type=float, default=30.0, help="seconds between RSS samples")
    p.add_argument("--max-growth", type=float, default=0.10,
                   help="largest accepted RSS growth, start to end (0.10 = 10%%)")
    p.add_argument("--port", type=int, default=8311)
    p.add_argument("--startup-timeout-s", type=float, default=900)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "soak")
    return p


def tree_rss(root_pid: int) -> int:
    """Resident bytes of a process and all its descendants (vLLM engines included)."""
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


class Sampler(threading.Thread):
    def __init__(self, pid: int, every_s: float):
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while True:
            self.samples.append((round(time.monotonic() - t0, 1), tree_rss(self.pid)))
            if self.done.wait(self.every_s):
                self.samples.append((round(time.monotonic() - t0, 1), tree_rss(self.pid)))
                return


def locust_run(url: str, opts: argparse.Namespace, duration: str, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "loadtest", "run", "--host", url, "--users", str(opts.users),
           "--spawn-rate", str(opts.users), "--duration", duration, "--warmup", "0",
           "--mix", opts.mix, "--max-tokens", opts.max_tokens, "--max-error-rate", "1",
           "--out", str(out)]
    print(f"  {' '.join(cmd[3:])}", flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads((out / "summary.json").read_text())


def errors_by_status(summary: dict[str, Any]) -> dict[str, int]:
    """Failures by HTTP status ('HTTP 429: ...' -> '429'; others by their kind)."""
    counts: dict[str, int] = {}
    groups = [r.get("errors", {}) for r in summary.get("routes", {}).values()]
    groups.append(summary.get("admin", {}).get("errors", {}))
    for errors in groups:
        for message, n in errors.items():
            m = re.match(r"HTTP (\d{3})", message)
            key = m.group(1) if m else message.split(":")[0][:40]
            counts[key] = counts.get(key, 0) + n
    return counts


def report(summary: dict[str, Any], samples: list[tuple[float, int]],
           opts: argparse.Namespace) -> dict[str, Any]:
    by_status = errors_by_status(summary)
    total = summary["requests"]
    not_429 = sum(n for k, n in by_status.items() if k != "429")
    start, end = samples[0][1], samples[-1][1]
    peak = max(rss for _, rss in samples)
    return {
        "users": opts.users, "mix": opts.mix, "duration": opts.duration,
        "warmup": opts.warmup, "max_tokens": opts.max_tokens,
        "requests": total, "failures": summary["failures"], "errors_by_status": by_status,
        "error_rate": summary["error_rate"],
        "error_rate_excluding_429": round(not_429 / total, 4) if total else 0.0,
        "output_tokens_per_s": summary["overall"].get("output_tokens_per_s"),
        "requests_per_s": summary["overall"].get("requests_per_s"),
        "rss_start_mb": round(start / 2**20, 1), "rss_end_mb": round(end / 2**20, 1),
        "rss_peak_mb": round(peak / 2**20, 1),
        "rss_growth": round((end - start) / start, 4) if start else None,
        "rss_samples_mb": [(t, round(b / 2**20, 1)) for t, b in samples],
        "goal": {"errors_other_than_429": 0, "max_rss_growth": opts.max_growth},
    }


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    opts.out.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{opts.port}"
    cmd = [sys.executable, "-m", "serving.cli", "serve", "--config", opts.config,
           "--host", "127.0.0.1", "--port", str(opts.port)]
    env = {**os.environ, "LORAG_DATA_DIR": str(opts.out / "data")}
    with running(cmd, url, opts.out / "server.log", opts.startup_timeout_s, env=env,
                 cwd=ROOT) as proc:
        print(f"== warm-up ({opts.warmup})", flush=True)
        locust_run(url, opts, opts.warmup, opts.out / "warmup")
        print(f"== soak ({opts.duration}, {opts.users} users)", flush=True)
        sampler = Sampler(proc.pid, opts.sample_every)
        sampler.start()
        try:
            summary = locust_run(url, opts, opts.duration, opts.out / "run")
        finally:
            sampler.done.set()
            sampler.join()
    result = report(summary, sampler.samples, opts)
    (opts.out / "soak.json").write_text(json.dumps(result, indent=2))
    print(f"requests {result['requests']}, failures {result['failures']} "
          f"{result['errors_by_status']}, error rate excluding 429 "
          f"{result['error_rate_excluding_429']:.4f}; RSS {result['rss_start_mb']} -> "
          f"{result['rss_end_mb']} MB ({100 * (result['rss_growth'] or 0):+.1f}%), peak "
          f"{result['rss_peak_mb']} MB; {result['output_tokens_per_s']} tok/s")
    print(f"-> {opts.out}/soak.json")
    ok = (result["errors_by_status"].keys() <= {"429"}
          and (result["rss_growth"] or 0) <= opts.max_growth)
    return 0 if ok else 1
