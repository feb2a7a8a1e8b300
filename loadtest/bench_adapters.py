"""Benchmark LoRA adapters: load time, and throughput with a mix of adapters vs the base.

    python -m loadtest.bench_adapters [--config FILE] [--adapter DIR] [--loads 10]

Starts lorag once (the config plus an allowed adapter folder of its own), then

1. load time: POSTs `--loads` distinct versions of the adapter (copies of the
   folder with a nonce file, so each is a new version with its own engine id)
   and reports p50/p95 of the POST /v1/adapters round trip - fetch from a local
   folder, validate, hash, load into the engine, activate;
2. throughput: runs vLLM's benchmark client (random dataset, 256 in / 32 out,
   concurrency 8) against the base route and against a mix of 4 adapters
   (`--lora-modules`, random per request), interleaved, and reports the ratio
   of output-token throughput (adapters / base).

Writes results/bench_adapters.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from loadtest.compare_vllm import add_workload_args, run_benchmark, summarize
from serving.local_server import running
from lorag_core.model_source import resolve_model_source
from serving.config import DEFAULT_CONFIG_PATH, dump_config, load_config, with_adapter_roots

ROOT = Path(__file__).resolve().parent.parent


def copies(adapter: Path, work: Path, prefix: str, n: int) -> list[Path]:
    out = []
    for i in range(n):
        dst = work / f"{prefix}{i}"
        shutil.copytree(adapter, dst, dirs_exist_ok=True)
        (dst / "nonce.txt").write_text(f"{prefix}{i} {time.time_ns()}\n")
        out.append(dst)
    return out


def measure_loads(http: httpx.Client, folders: list[Path]) -> dict:
    times = []
    for folder in folders:
        started = time.perf_counter()
        reply = http.post("/v1/adapters", json={"name": "load-probe", "source": str(folder)})
        times.append(time.perf_counter() - started)
        reply.raise_for_status()
    http.delete("/v1/adapters/load-probe")
    times_ms = sorted(t * 1000 for t in times)
    return {"n": len(times_ms), "p50_ms": statistics.median(times_ms),
            "p95_ms": times_ms[min(len(times_ms) - 1, round(0.95 * (len(times_ms) - 1)))],
            "all_ms": times_ms}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    p.add_argument("--adapter", type=Path, default=ROOT / "adapters/samples/json-format")
    p.add_argument("--loads", type=int, default=10)
    add_workload_args(p)
    p.add_argument("--repeats", type=int, default=2, help="measured runs per mode")
    p.add_argument("--port", type=int, default=8013)
    p.add_argument("--startup-timeout-s", type=float, default=900)
    p.add_argument("--out", type=Path, default=Path("results/bench_adapters.json"))
    opts = p.parse_args(argv)
    opts.out.parent.mkdir(parents=True, exist_ok=True)

    cfg = load_config(opts.config)
    route = cfg.routes[0]
    tokenizer = resolve_model_source(cfg.models[route.model].source)
    url = f"http://127.0.0.1:{opts.port}"
    with tempfile.TemporaryDirectory(prefix="lorag-bench-adapters-") as tmp:
        work = Path(tmp)
        config = dump_config(with_adapter_roots(cfg, [str(work)]), work / "config.yaml")
        cmd = [sys.executable, "-m", "serving.cli", "serve", "--config", str(config),
               "--host", "127.0.0.1", "--port", str(opts.port)]
        # A data dir of its own: the benchmark's adapters must not linger in the user's.
        env = {**os.environ, "LORAG_DATA_DIR": str(work / "data")}
        with running(cmd, url, opts.out.parent / "bench_adapters-server.log",
                     opts.startup_timeout_s, env=env), \
                httpx.Client(base_url=url, timeout=600) as http:
            loads = measure_loads(http, copies(opts.adapter, work, "probe", opts.loads))
            print(f"adapter load (POST /v1/adapters, local folder): p50 {loads['p50_ms']:.0f} ms"
                  f", p95 {loads['p95_ms']:.0f} ms over {loads['n']}", flush=True)
            names = [f"mix{i}" for i in range(4)]
            for name, folder in zip(names, copies(opts.adapter, work, "mix", 4), strict=True):
                http.post("/v1/adapters", json={"name": name, "source": str(folder)}
                          ).raise_for_status()
            modes = {"base": [], "adapters": []}
            extra = {"base": [], "adapters": ["--lora-modules", *names]}
            for i in range(opts.repeats + 1):  # the first round warms up, not counted
                for mode in modes:
                    print(f"{mode} run {i}{' (warm-up)' if i == 0 else ''}", flush=True)
                    result = run_benchmark(url, route.name, tokenizer, opts, extra[mode])
                    if i > 0:
                        modes[mode].append(result)
    medians = {mode: summarize(runs) for mode, runs in modes.items()}
    ratio = medians["adapters"]["output_throughput"] / medians["base"]["output_throughput"]
    report = {
        "workload": {"dataset": "random", "input_len": opts.input_len,
                     "output_len": opts.output_len, "num_prompts": opts.num_prompts,
                     "max_concurrency": opts.concurrency, "repeats": opts.repeats,
                     "adapters_in_mix": len(names), "adapter": str(opts.adapter)},
        "adapter_load": loads,
        "base": {"runs": modes["base"], "median": medians["base"]},
        "adapters": {"runs": modes["adapters"], "median": medians["adapters"]},
        "output_throughput_ratio": ratio,
    }
    opts.out.write_text(json.dumps(report, indent=2))
    print(f"\noutput tok/s: base {medians['base']['output_throughput']:.1f}, 4 adapters "
          f"{medians['adapters']['output_throughput']:.1f}, ratio {ratio:.3f}; "
          f"median TTFT ms: base {medians['base']['median_ttft_ms']:.0f}, adapters "
          f"{medians['adapters']['median_ttft_ms']:.0f}  -> {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
