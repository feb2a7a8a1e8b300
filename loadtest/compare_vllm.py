"""Benchmark lorag against vLLM's own OpenAI server, same engine, same workload.

    python -m loadtest.compare_vllm [--config FILE] [--route base] [--num-prompts 32]

Runs vLLM's benchmark client (`vllm.benchmarks.serve`, random dataset, 256
input / 32 output tokens, concurrency 8) against lorag (`lorag serve`) and
against `python -m vllm.entrypoints.openai.api_server` started with the very
engine arguments lorag uses (`serving.engine_args.engine_cli_args`). The
servers run one at a time, never together, so neither steals the other's CPU,
in interleaved rounds (lorag, vLLM, lorag, vLLM) so that both see the same
drift of the machine's speed. Writes a JSON with both results (every run) and
the ratio of the medians over all measured runs.

Goal: lorag output-token throughput >= 0.95 x vLLM's, median TTFT <= 1.1 x.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
from contextlib import redirect_stdout
from pathlib import Path

from serving.local_server import running
from lorag_core.model_source import resolve_model_source
from serving.config import load_config
from serving.engine_args import engine_cli_args

KEPT_METRICS = (
    "completed", "failed", "duration", "total_input_tokens", "total_output_tokens",
    "request_throughput", "output_throughput", "total_token_throughput",
    "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms",
    "mean_itl_ms", "median_itl_ms", "p99_itl_ms", "median_e2el_ms",
)


def run_benchmark(base_url: str, model: str, tokenizer: str, opts: argparse.Namespace,
                  extra_args: list[str] | None = None) -> dict:
    from vllm.benchmarks.serve import add_cli_args
    from vllm.benchmarks.serve import main as bench_main
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()
    add_cli_args(parser)
    args = parser.parse_args([
        "--backend", "vllm", "--base-url", base_url, "--endpoint", "/v1/completions",
        "--model", model, "--tokenizer", tokenizer,
        "--dataset-name", "random", "--random-input-len", str(opts.input_len),
        "--random-output-len", str(opts.output_len), "--num-prompts", str(opts.num_prompts),
        "--max-concurrency", str(opts.concurrency), "--num-warmups", str(opts.concurrency),
        "--seed", "0", "--percentile-metrics", "ttft,tpot,itl,e2el", "--disable-tqdm",
        *(extra_args or []),
    ])
    out = io.StringIO()
    with redirect_stdout(out):  # vLLM's client prints its whole argument namespace
        result = bench_main(args)
    print("\n".join(line for line in out.getvalue().splitlines()
                    if not line.startswith("Namespace(")), flush=True)
    # numpy scalars (np.int64) are not JSON-serializable; keep plain numbers.
    return {k: getattr(v, "item", lambda v=v: v)() for k in KEPT_METRICS
            if (v := result.get(k)) is not None}


def add_workload_args(p: argparse.ArgumentParser) -> None:
    """The workload vLLM's benchmark client runs (shared by the lorag benchmarks)."""
    p.add_argument("--num-prompts", type=int, default=32)
    p.add_argument("--input-len", type=int, default=256)
    p.add_argument("--output-len", type=int, default=32)
    p.add_argument("--concurrency", type=int, default=8)


def summarize(runs: list[dict]) -> dict:
    keys = [k for k in KEPT_METRICS if all(isinstance(r.get(k), (int, float)) for r in runs)]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def bench_server(name: str, cmd: list[str], url: str, served: str, tokenizer: str,
                 opts: argparse.Namespace, round_no: int = 1) -> dict:
    runs, warmups = [], []
    tag = f"{name} (round {round_no}/{opts.rounds})"
    with running(cmd, url, opts.out.parent / f"{name}-server.log", opts.startup_timeout_s):
        # The first full runs after start-up are slower on both servers (kernels and
        # allocators warming up on the batch shapes; lorag's Ray workers take one run
        # longer: measured 34.8 -> 41.4 -> 48.6 -> 51.2 tok/s against vLLM's
        # 35.8 -> 52.9 -> 50.2 -> 51.5). Warm-up runs are recorded, not compared.
        for i in range(opts.warmup_runs):
            print(f"benchmark {tag} warm-up run {i + 1}/{opts.warmup_runs}", flush=True)
            warmups.append(run_benchmark(url, served, tokenizer, opts))
        for i in range(opts.repeats):
            print(f"benchmark {tag} run {i + 1}/{opts.repeats}", flush=True)
            runs.append(run_benchmark(url, served, tokenizer, opts))
    return {"warmup_runs": warmups, "runs": runs}


def bench_rounds(servers: dict[str, tuple[list[str], str]], served: str, tokenizer: str,
                 opts: argparse.Namespace) -> dict[str, dict]:
    """Each server in turn, `opts.rounds` times (lorag, vLLM, lorag, vLLM, ...).

    This VM's speed drifts by 10-15% within a quarter of an hour (vLLM alone measured
    27.7 and 31.5 tok/s 15 minutes apart), so one block per server compares two
    different machines; interleaved rounds put both servers on the same drift.
    """
    out: dict[str, dict] = {name: {"rounds": []} for name in servers}
    for r in range(1, opts.rounds + 1):
        for name, (cmd, url) in servers.items():
            out[name]["rounds"].append(bench_server(name, cmd, url, served, tokenizer, opts, r))
    for result in out.values():
        result["median"] = summarize([run for rnd in result["rounds"] for run in rnd["runs"]])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="lorag config (default: configs/default.yaml)")
    p.add_argument("--route", help="route to benchmark (default: the first route)")
    add_workload_args(p)
    p.add_argument("--repeats", type=int, default=2, help="measured runs per server and round")
    p.add_argument("--rounds", type=int, default=2,
                   help="times each server is started and measured, interleaved")
    p.add_argument("--warmup-runs", type=int, default=2, help="full runs discarded first")
    p.add_argument("--lorag-port", type=int, default=8011)
    p.add_argument("--vllm-port", type=int, default=8012)
    p.add_argument("--startup-timeout-s", type=float, default=900)
    p.add_argument("--out", type=Path, default=Path("results/compare_vllm.json"))
    opts = p.parse_args(argv)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    if opts.num_prompts < 32:
        p.error("--num-prompts must be at least 32")

    cfg = load_config(opts.config)
    route = cfg.route(opts.route) if opts.route else cfg.routes[0]
    if route is None:
        p.error(f"unknown route {opts.route}")
    model = cfg.models[route.model]
    model_path = resolve_model_source(model.source)
    tokenizer = model.tokenizer or model_path
    py = sys.executable
    config_path = opts.config or str(Path(__file__).resolve().parent.parent / "configs/default.yaml")

    lorag_url = f"http://127.0.0.1:{opts.lorag_port}"
    lorag_cmd = [py, "-m", "serving.cli", "serve", "--config", config_path,
                 "--host", "127.0.0.1", "--port", str(opts.lorag_port)]
    vllm_url = f"http://127.0.0.1:{opts.vllm_port}"
    vllm_cmd = [py, "-m", "vllm.entrypoints.openai.api_server",
                *engine_cli_args(model, model_path, [route.name]),
                "--host", "127.0.0.1", "--port", str(opts.vllm_port)]
    results = bench_rounds({"lorag": (lorag_cmd, lorag_url), "vllm": (vllm_cmd, vllm_url)},
                           route.name, tokenizer, opts)
    lorag, vllm = results["lorag"], results["vllm"]

    lm, vm = lorag["median"], vllm["median"]
    ratios = {
        "output_throughput": lm["output_throughput"] / vm["output_throughput"],
        "median_ttft": lm["median_ttft_ms"] / vm["median_ttft_ms"],
    }
    report = {
        "workload": {"dataset": "random", "input_len": opts.input_len,
                     "output_len": opts.output_len, "num_prompts": opts.num_prompts,
                     "max_concurrency": opts.concurrency, "repeats": opts.repeats,
                     "rounds": opts.rounds,
                     "warmup_runs": opts.warmup_runs,
                     "route": route.name, "model": model.source,
                     "engine_args": vllm_cmd[3:]},
        "lorag": lorag, "vllm": vllm, "ratios": ratios,
        "goals": {"output_throughput_ratio_min": 0.95, "median_ttft_ratio_max": 1.1,
                  "met": ratios["output_throughput"] >= 0.95 and ratios["median_ttft"] <= 1.1},
    }
    opts.out.write_text(json.dumps(report, indent=2))
    print(f"\n{'':24}{'lorag':>12}{'vLLM':>12}{'ratio':>10}")
    print(f"{'output tok/s':24}{lm['output_throughput']:12.1f}{vm['output_throughput']:12.1f}"
          f"{ratios['output_throughput']:10.3f}")
    print(f"{'median TTFT ms':24}{lm['median_ttft_ms']:12.1f}{vm['median_ttft_ms']:12.1f}"
          f"{ratios['median_ttft']:10.3f}")
    print(f"goals met: {report['goals']['met']}  -> {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
