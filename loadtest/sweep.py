"""Concurrency sweep: throughput and TTFT against concurrency, lorag and vLLM's own server.

    python -m loadtest sweep [--concurrency 1,2,4,8,16] [--duration 60] [--warmup 10] \\
        [--route base] [--prompt-len 256] [--max-tokens 32] [--servers lorag,vllm] \\
        [--out results/sweep]

For each server - `lorag serve` with the config, then vLLM's
`python -m vllm.entrypoints.openai.api_server` with the very engine arguments
lorag uses (as `loadtest.compare_vllm`), one after the other, never together -
it runs the locust suite (`python -m loadtest run`, a subprocess per step) with
N plain users streaming to one route, no think time, for each N. Both servers
get the same client, the same prompts (random filler of --prompt-len tokens)
and exactly --max-tokens output tokens (`ignore_eos`). Writes `sweep.json`
(each step's summary) and `sweep.png`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from serving.local_server import running

ROOT = Path(__file__).resolve().parent.parent
KEPT = ("requests", "failures", "requests_per_s", "output_tokens_per_s", "ttft_ms", "itl_ms",
        "latency_ms")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m loadtest sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    p.add_argument("--route", default="base", help="route to load (a route without "
                   "retrieval or adapter, so that vLLM's server can serve the same)")
    p.add_argument("--concurrency", default="1,2,4,8,16")
    p.add_argument("--duration", default="60", help="measured seconds per step")
    p.add_argument("--warmup", default="10", help="seconds per step before measuring")
    p.add_argument("--prompt-len", default="256")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--servers", default="lorag,vllm")
    p.add_argument("--lorag-port", type=int, default=8011)
    p.add_argument("--vllm-port", type=int, default=8012)
    p.add_argument("--startup-timeout-s", type=float, default=900)
    p.add_argument("--out", type=Path, default=Path("results/sweep"))
    return p


def server_commands(config_path: str, route_name: str, lorag_port: int,
                    vllm_port: int) -> dict[str, list[str]]:
    """Both servers on the route's model, vLLM's with lorag's engine arguments."""
    from lorag_core.model_source import resolve_model_source
    from serving.config import load_config
    from serving.engine_args import engine_cli_args

    cfg = load_config(config_path)
    route = cfg.route(route_name)
    if route is None:
        raise SystemExit(f"unknown route {route_name!r}")
    if route.adapter or route.retrieval:
        raise SystemExit(f"route {route_name!r} has an adapter or retrieval; vLLM's server "
                         "cannot serve the same: sweep a plain route")
    model = cfg.models[route.model]
    py = sys.executable
    return {
        "lorag": [py, "-m", "serving.cli", "serve", "--config", config_path,
                  "--host", "127.0.0.1", "--port", str(lorag_port)],
        "vllm": [py, "-m", "vllm.entrypoints.openai.api_server",
                 *engine_cli_args(model, resolve_model_source(model.source), [route.name]),
                 "--host", "127.0.0.1", "--port", str(vllm_port)],
    }


def run_step(url: str, users: int, opts: argparse.Namespace, out: Path,
             duration: str | None = None, warmup: str | None = None) -> dict[str, Any]:
    """One locust run at `users` concurrency; its summary's overall figures."""
    cmd = [sys.executable, "-m", "loadtest", "run", "--host", url, "--users", str(users),
           "--spawn-rate", str(users), "--duration", duration or opts.duration,
           "--warmup", warmup or opts.warmup,
           "--mix", "plain=1,admin=0", "--routes", f"plain={opts.route}",
           "--prompt-len", opts.prompt_len, "--max-tokens", str(opts.max_tokens),
           "--ignore-eos", "--max-error-rate", "1", "--out", str(out)]
    print(f"  concurrency {users}: {' '.join(cmd[3:])}", flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    summary = json.loads((out / "summary.json").read_text())
    step = {"concurrency": users, **{k: summary["overall"][k] for k in KEPT}}
    print(f"    {step['output_tokens_per_s']:.1f} tok/s, {step['requests_per_s']:.2f} req/s, "
          f"TTFT p50 {step['ttft_ms']['p50']} ms, p99 {step['ttft_ms']['p99']} ms, "
          f"failures {step['failures']}", flush=True)
    return step


def saturation(steps: list[dict[str, Any]], gain: float = 1.1) -> int | None:
    """The concurrency after which more users add less than `gain`x throughput
    (None while every step still grows).

    >>> saturation([{"concurrency": 1, "output_tokens_per_s": 10},
    ...             {"concurrency": 2, "output_tokens_per_s": 19},
    ...             {"concurrency": 4, "output_tokens_per_s": 20}])
    2
    """
    for prev, cur in zip(steps, steps[1:]):
        if cur["output_tokens_per_s"] < gain * prev["output_tokens_per_s"]:
            return prev["concurrency"]
    return None


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_tp, ax_ttft) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (name, steps) in enumerate(report["servers"].items()):
        xs, color = [s["concurrency"] for s in steps], f"C{i}"
        ax_tp.plot(xs, [s["output_tokens_per_s"] for s in steps], "o-", color=color, label=name)
        ax_ttft.plot(xs, [s["ttft_ms"]["p50"] for s in steps], "o-", color=color,
                     label=f"{name} p50")
        ax_ttft.plot(xs, [s["ttft_ms"]["p99"] for s in steps], "x--", color=color,
                     label=f"{name} p99")
    w = report["workload"]
    for ax, ylabel in ((ax_tp, "output tokens/s"), (ax_ttft, "time to first token (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(report["concurrency"], [str(c) for c in report["concurrency"]])
        ax.set_xlabel("concurrent users")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend()
    ax_tp.set_ylim(bottom=0)
    fig.suptitle(f"route {w['route']}: ~{w['prompt_len']} prompt / {w['max_tokens']} output "
                 f"tokens, streaming, {w['duration_s']} s per step (locust)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    levels = [int(c) for c in opts.concurrency.split(",")]
    servers = [s.strip() for s in opts.servers.split(",") if s.strip()]
    opts.out.mkdir(parents=True, exist_ok=True)
    cmds = server_commands(opts.config, opts.route, opts.lorag_port, opts.vllm_port)
    ports = {"lorag": opts.lorag_port, "vllm": opts.vllm_port}
    report: dict[str, Any] = {
        "workload": {"route": opts.route, "prompt_len": opts.prompt_len,
                     "max_tokens": opts.max_tokens, "ignore_eos": True,
                     "duration_s": float(opts.duration), "warmup_s": float(opts.warmup),
                     "client": "locust (python -m loadtest run), plain users, no think time",
                     "commands": {k: cmds[k][1:] for k in servers}},
        "concurrency": levels, "servers": {}, "saturation": {},
    }
    for name in servers:
        url = f"http://127.0.0.1:{ports[name]}"
        print(f"== {name}", flush=True)
        with running(cmds[name], url, opts.out / f"{name}-server.log", opts.startup_timeout_s,
                     cwd=ROOT):
            # One discarded run first: the first batches after start-up are slower.
            run_step(url, max(levels), opts, opts.out / name / "warmup", "20", "0")
            steps = [run_step(url, c, opts, opts.out / name / f"c{c}") for c in levels]
        report["servers"][name] = steps
        report["saturation"][name] = saturation(steps)
        (opts.out / "sweep.json").write_text(json.dumps(report, indent=2))
    plot(report, opts.out / "sweep.png")
    print(format_sweep(report))
    print(f"-> {opts.out}/sweep.json, sweep.png")
    return 0


def format_sweep(report: dict[str, Any]) -> str:
    rows = [f"{'server':<8}{'users':>6}{'req/s':>8}{'tok/s':>8}{'TTFT p50':>10}{'p99':>8}"
            f"{'ITL p50':>9}{'p99':>8}{'fail':>6}"]
    for name, steps in report["servers"].items():
        for s in steps:
            rows.append(f"{name:<8}{s['concurrency']:>6}{s['requests_per_s']:>8.2f}"
                        f"{s['output_tokens_per_s']:>8.1f}{s['ttft_ms']['p50'] or 0:>10.0f}"
                        f"{s['ttft_ms']['p99'] or 0:>8.0f}{s['itl_ms']['p50'] or 0:>9.0f}"
                        f"{s['itl_ms']['p99'] or 0:>8.0f}{s['failures']:>6}")
    return "\n".join(rows)
