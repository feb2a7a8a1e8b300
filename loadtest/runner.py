"""Headless locust run, in this process: `python -m loadtest run`.

    python -m loadtest run --host http://127.0.0.1:8000 --users 8 --spawn-rate 2 \\
        --duration 60 [--mix plain=4,rag=2,adapter=1,hybrid=1,admin=1] --out results/lt

Writes locust's CSV files (`locust_stats.csv`, `locust_stats_history.csv`,
`locust_failures.csv`, `locust_exceptions.csv`), its HTML report
(`report.html`) and `summary.json` (see loadtest/summary.py) to --out, prints
the summary table, and exits 1 when the error rate passes --max-error-rate.

Importing this module imports locust, which monkey-patches the standard library
for gevent: run it in its own process (the sweep and the tests start it as a
subprocess), never inside a server or an asyncio program.
"""

from __future__ import annotations

import locust  # noqa: F401  (first: gevent's monkey-patching before anything else)

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import gevent
import requests
from locust import events
from locust.env import Environment
from locust.html import get_html_report
from locust.log import setup_logging
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter, stats_history

from loadtest.locustfile import LEFTOVERS, add_workload_options, apply_mix, workload_from_options
from loadtest.summary import Collector, format_table

logger = logging.getLogger("loadtest")


def parse_duration(text: str) -> float:
    """`90`, `90s`, `5m`, `1h` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    scale = units.get(text[-1:], None)
    try:
        return float(text[:-1]) * scale if scale else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30, 30s, 5m)") \
            from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--users", type=int, default=4, help="concurrent users (all kinds)")
    p.add_argument("--spawn-rate", type=float, default=1.0, help="users started per second")
    p.add_argument("--duration", type=parse_duration, default=60.0,
                   help="measured time after the warm-up (30, 30s, 5m)")
    p.add_argument("--warmup", type=parse_duration, default=0.0,
                   help="time run before the statistics are reset (not in the reports' "
                        "summary; locust's CSV/HTML also start then)")
    p.add_argument("--stop-timeout", type=parse_duration, default=0.0,
                   help="at the end, let users finish the request they are in for up to "
                        "this long and count it (the summary's duration includes it); "
                        "default 0: answers in flight are cut off and not counted")
    p.add_argument("--max-error-rate", type=float, default=0.01,
                   help="exit 1 when failed / all requests is above this (default 0.01)")
    p.add_argument("--out", type=Path, default=Path("results/loadtest"))
    add_workload_options(p)
    return p


def run(opts: argparse.Namespace) -> dict[str, Any]:
    """The run itself; returns the summary (also written to --out/summary.json)."""
    opts.out.mkdir(parents=True, exist_ok=True)
    workload = workload_from_options(opts)
    classes = apply_mix(workload.mix)
    env = Environment(user_classes=classes, events=events, host=opts.host.rstrip("/"),
                      parsed_options=opts, stop_timeout=opts.stop_timeout or None)
    env.lorag_workload = workload
    collector = Collector()
    events.request.add_listener(collector.on_request)
    runner = env.create_local_runner()
    csv_writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(opts.out / "locust"),
                                    full_history=True)
    writers = [gevent.spawn(csv_writer.stats_writer), gevent.spawn(stats_history, runner)]

    runner.start(opts.users, spawn_rate=opts.spawn_rate)
    if opts.warmup:
        gevent.sleep(opts.warmup)
        env.stats.reset_all()
        collector.reset()
    else:
        collector.reset()
    gevent.sleep(opts.duration)
    if not opts.stop_timeout:
        collector.stop()  # users are stopped at once: answers in flight are not counted
    runner.quit()
    collector.stop()  # (no-op when already stopped)
    gevent.sleep(1.5)  # one more pass of the CSV writer (it writes every second)
    gevent.killall(writers)
    csv_writer.close_files()
    (opts.out / "report.html").write_text(get_html_report(env, show_download_link=False))
    events.request.remove_listener(collector.on_request)
    cleanup(env.host, workload.admin_index)

    summary = collector.summary(
        host=env.host, users=opts.users, spawn_rate=opts.spawn_rate,
        warmup_s=opts.warmup, mix=workload.mix, routes_by_kind=workload.routes,
        prompt_len=list(workload.prompt_len), max_tokens=workload.max_tokens,
        ignore_eos=workload.ignore_eos, run_id=workload.run_id,
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        max_error_rate=opts.max_error_rate)
    summary["passed"] = summary["error_rate"] <= opts.max_error_rate
    (opts.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def cleanup(host: str, index: str) -> None:
    """Remove what admin users created and could not remove (stopped mid-cycle)."""
    for name, kind in list(LEFTOVERS.items()):
        path = (f"/v1/adapters/{name}" if kind == "adapter"
                else f"/v1/indexes/{kind.partition(':')[2] or index}/documents/{name}")
        try:
            status = requests.delete(host + path, timeout=60).status_code
        except requests.RequestException as err:
            logger.warning("could not remove %s: %s", path, err)
            continue
        if status in (200, 404):
            LEFTOVERS.pop(name, None)
        else:
            logger.warning("could not remove %s: HTTP %s", path, status)


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    setup_logging("WARNING")
    try:
        summary = run(opts)
    except ValueError as err:  # a bad --mix / --routes / --prompt-len
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(summary))
    print(f"-> {opts.out}/summary.json, report.html, locust_stats.csv")
    if not summary["passed"]:
        print(f"FAILED: error rate {summary['error_rate']:.2%} > {opts.max_error_rate:.2%}",
              file=sys.stderr)
        return 1
    return 0
