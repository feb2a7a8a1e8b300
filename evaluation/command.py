"""`lorag eval`: options, a local server (or --url), the run, the report.

Only the standard library is imported at module level: `lorag --help` and the
other commands do not pay for openai, httpx or matplotlib.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from evaluation import SAMPLES

__all__ = ["SAMPLE", "STARTUP_TIMEOUT_S", "add_arguments", "local_server", "run_command",
           "baseline_summary", "compare_command"]

SAMPLE = SAMPLES / "helix"
STARTUP_TIMEOUT_S = float(os.environ.get("LORAG_EVAL_STARTUP_TIMEOUT_S", "900"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `lorag eval`."""
    parser.add_argument("--corpus", type=Path,
                        help=f"folder of .md/.txt/.html documents, doc_id = file stem "
                        f"(default: the sample set, {SAMPLE / 'docs'})")
    parser.add_argument("--questions", type=Path,
                        help="questions, JSON lines (default: the sample set's)")
    parser.add_argument("--format-prompts", type=Path,
                        help="format prompts, JSON lines (default: the sample set's when "
                        "--questions is not given, else none)")
    parser.add_argument("--routes", type=lambda s: [r.strip() for r in s.split(",") if r.strip()],
                        help="comma-separated routes (default: every route of the server)")
    parser.add_argument("--config", type=Path,
                        help="config to serve, and to read index chunking and no-context "
                        "answers from (default: configs/default.yaml)")
    parser.add_argument("--url", help="evaluate this running server instead of starting one")
    parser.add_argument("--out", type=Path, help="output folder (default: results/eval/<time>)")
    parser.add_argument("--k", type=int, default=5, help="top k for retrieval recall@k")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    parser.add_argument("--max-tokens", type=int,
                        help="max_tokens of every answer (default: each route's own)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per request")
    parser.add_argument("--index-name", help="name of the fresh index (default: eval-<time>-<id>)")
    parser.add_argument("--keep-index", action="store_true",
                        help="do not delete the fresh index at the end")
    parser.add_argument("--baseline", type=Path,
                        help="an earlier run's eval.json: each route is also compared with "
                        "itself there, question by question (see `lorag eval-compare`)")


@contextmanager
def local_server(config: Path, log_path: Path):
    """`lorag serve` on a free port with a throw-away data directory; yields its URL."""
    from evaluation.runner import EvalError
    from serving.local_server import running
    from lorag_core.ports import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "serving.cli", "serve", "--config", str(config),
           "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryDirectory(prefix="lorag-eval-", ignore_cleanup_errors=True) as data:
        env = {**os.environ, "LORAG_DATA_DIR": data}
        ctx = running(cmd, url, log_path, STARTUP_TIMEOUT_S, env=env)
        try:
            ctx.__enter__()
        except (RuntimeError, TimeoutError) as err:
            raise EvalError(f"the server did not start (log: {log_path}): {err}") from None
        try:
            yield url
        finally:
            ctx.__exit__(None, None, None)


def _options(args: argparse.Namespace) -> tuple[Any, list, list, list]:
    """EvalOptions and inputs; raises DatasetError/DocumentFileError/ConfigError."""
    from evaluation.data import load_format_prompts, load_questions
    from evaluation.evaluate import EvalOptions
    from retrieval.files import DocumentFileError, load_documents
    from serving.config import load_config

    defaults = args.questions is None
    corpus = args.corpus or SAMPLE / "docs"
    questions_path = args.questions or SAMPLE / "questions.jsonl"
    formats_path = args.format_prompts or (SAMPLE / "format_prompts.jsonl" if defaults else None)
    if not corpus.is_dir():
        raise DocumentFileError(f"--corpus {corpus}: not a folder")
    questions = load_questions(questions_path)
    formats = load_format_prompts(formats_path) if formats_path else []
    docs = load_documents([corpus])
    if not docs:
        raise DocumentFileError(f"--corpus {corpus}: no .md, .txt or .html files")
    config = load_config(args.config)
    opts = EvalOptions(
        corpus=corpus, questions=questions_path, format_prompts=formats_path,
        routes=args.routes, k=args.k, concurrency=args.concurrency,
        max_tokens=args.max_tokens, timeout_s=args.timeout, keep_index=args.keep_index,
        index_name=args.index_name,
        config_indexes={n: i.spec().model_dump(mode="json") for n, i in config.indexes.items()},
        no_context_answers={r.name: r.template.no_context_answer for r in config.routes})
    return opts, questions, formats, docs


def run_command(args: argparse.Namespace) -> int:
    """Run `lorag eval`: 2 for bad inputs, 1 when the server or index cannot be set up."""
    from evaluation.data import DatasetError
    from evaluation.evaluate import evaluate
    from evaluation.report import baseline_table, markdown_table, write_report
    from evaluation.runner import EvalError
    from evaluation.stats import BaselineError, load_baseline
    from retrieval.files import DocumentFileError
    from serving.config import DEFAULT_CONFIG_PATH, ConfigError

    for flag, low, high in (("k", 1, 100), ("concurrency", 1, 1024), ("max_tokens", 1, None)):
        value = getattr(args, flag)
        if value is not None and (value < low or (high is not None and value > high)):
            print(f"lorag eval: --{flag.replace('_', '-')} must be at least {low}"
                  + (f" and at most {high}" if high else ""), file=sys.stderr)
            return 2
    try:
        opts, questions, formats, docs = _options(args)
        baseline = load_baseline(args.baseline) if args.baseline else None
    except (DatasetError, DocumentFileError, ConfigError, BaselineError) as err:
        print(f"lorag eval: {err}", file=sys.stderr)
        return 2
    for name in ("httpx", "httpx2"):  # one INFO line per request (openai uses httpx2)
        logging.getLogger(name).setLevel(logging.WARNING)
    out = args.out or Path("results") / "eval" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            url = args.url or stack.enter_context(
                local_server(args.config or DEFAULT_CONFIG_PATH, out / "server.log"))
            result = asyncio.run(evaluate(url, opts, questions, formats, docs))
    except EvalError as err:
        print(f"lorag eval: {err}", file=sys.stderr)
        return 1
    result["config"].update(mode="url" if args.url else "started",
                            config=str(args.config or DEFAULT_CONFIG_PATH))
    if baseline is not None:
        result["baseline"] = baseline_summary(args.baseline, baseline, result)
    paths = write_report(result, out)
    print(markdown_table(result))
    if baseline is not None:
        print(f"\nAgainst the baseline {args.baseline}:\n{baseline_table(result['baseline'])}")
    errors = sum(r["metrics"]["errors"] for r in result["routes"].values())
    if errors:
        print(f"lorag eval: {errors} request(s) failed; see the records in {paths['json']}",
              file=sys.stderr)
    print("\nwritten: " + ", ".join(str(p) for p in paths.values()))
    return 0


def baseline_summary(path: Path, baseline: dict[str, Any], result: dict[str, Any]
                     ) -> dict[str, Any]:
    """`result["baseline"]`: which run, and each shared route compared with it."""
    from evaluation.stats import against_baseline

    return {"path": str(path), "started_at": (baseline.get("config") or {}).get("started_at"),
            "routes": against_baseline(result, baseline)}


def compare_command(args: argparse.Namespace) -> int:
    """`lorag eval-compare BASELINE CURRENT`: 2 for an unreadable file or no shared route."""
    from evaluation.report import PAIRED_NOTE, baseline_causes_table, baseline_table
    from evaluation.stats import BaselineError, load_baseline

    try:
        baseline, current = load_baseline(args.baseline), load_baseline(args.current)
    except BaselineError as err:
        print(f"lorag eval-compare: {err}", file=sys.stderr)
        return 2
    summary = baseline_summary(args.baseline, baseline, current)
    if not summary["routes"]:
        print(f"lorag eval-compare: no route is in both runs ({', '.join(baseline['routes'])}"
              f" against {', '.join(current['routes'])})", file=sys.stderr)
        return 2
    if not any(r["matched"] for r in summary["routes"]):
        print("lorag eval-compare: the two runs share no question (matched by id and text)",
              file=sys.stderr)
        return 2
    print(f"{args.current} against the baseline {args.baseline}:\n")
    print(baseline_table(summary))
    print(f"\n{PAIRED_NOTE}")
    if causes := baseline_causes_table(summary):
        print(f"\nWrong answers by cause:\n\n{causes}")
    return 0
