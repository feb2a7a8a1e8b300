"""The `lorag` command line.

    lorag serve [--config FILE] [--host H] [--port P]
    lorag prepare-model [--config FILE]
    lorag ingest PATH... --index NAME [--url URL] [--create]
    lorag eval [--corpus DIR] [--questions FILE.jsonl] [--format-prompts FILE.jsonl]
               [--routes base,rag,tuned,hybrid] [--config FILE] [--url URL] [--out DIR]
               [--baseline EARLIER/eval.json]
    lorag eval-compare BASELINE/eval.json CURRENT/eval.json
    lorag adapters train --base MODEL --data PAIRS.jsonl --out DIR [options]
    lorag k8s render --config FILE [--image IMAGE] [--namespace NS] [--settings FILE]
                     [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from adapters.training import add_arguments as add_train_arguments
from serving.config import ConfigError, LoragConfig, load_config
from serving.k8s_cli import add_render_arguments

__all__ = ["prepare_models", "start_server", "check_auth", "build_parser", "main"]

logger = logging.getLogger("lorag")


def _prepare_environment(config: LoragConfig) -> None:
    """Settings every process of the local cluster inherits (serving/ray_env.py); a
    variable already set in the environment wins."""
    from serving.ray_env import local_env

    for key, value in local_env(config).items():
        os.environ.setdefault(key, value)


def prepare_models(config: LoragConfig) -> None:
    """Prepare the builtin LLMs and the builtin embedders (served or named by a config
    index) once, here, rather than in replicas at start-up; a builtin that is not
    installed fails now, with the command that installs it. A model on disk (builtin
    or a folder) that does not fit in this CPU machine's free memory fails now too
    (`serving.memory_plan`), as its replicas would."""
    from lorag_core.model_source import is_builtin, resolve_model_source
    from retrieval.builtin_embedders import resolve_embedder
    from serving.engine_args import has_cuda_device
    from serving.memory_plan import ModelDoesNotFitError, plan_memory

    on_gpu = None
    for key, model in config.models.items():
        if is_builtin(model.source):
            path = resolve_model_source(model.source)
            print(f"model {key}: {model.source} ready at {path}", flush=True)
        elif os.path.isdir(model.source):
            path = model.source
        else:
            continue  # a hub id: vLLM downloads it in the replica
        on_gpu = has_cuda_device() if on_gpu is None else on_gpu
        if on_gpu:
            continue  # vLLM sizes a GPU's KV cache itself
        try:
            plan = plan_memory(model, path, on_gpu=False)
        except ModelDoesNotFitError as err:
            raise ConfigError(f"models.{key}: {err}") from None
        print(f"model {key}: {plan.describe()}", flush=True)
    embedders = {*config.retrieval.embedding_models.values(),
                 *(index.embedder for index in config.indexes.values())}
    for source in sorted(filter(is_builtin, embedders)):
        print(f"embedder {source} ready at {resolve_embedder(source)}", flush=True)


def start_server(config: LoragConfig, *, host: str | None = None,
                 port: int | None = None) -> str:
    """Start Ray (local if none is running), Serve's HTTP proxy and the app; return its URL."""
    import ray
    from ray import serve

    from serving.app import build_from_config

    _prepare_environment(config)
    host = host or config.server.host
    port = port or config.server.port
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            include_dashboard=False,
            logging_level=logging.WARNING,
            runtime_env={"env_vars": {k: os.environ[k] for k in _FORWARDED_ENV
                                      if k in os.environ}},
        )
    serve.start(
        http_options={
            "host": host,
            "port": port,
            "request_timeout_s": config.server.ingress.request_timeout_s,
        }
    )
    serve.run(build_from_config(config), name=config.server.app_name, route_prefix="/",
              blocking=False)
    return f"http://{host}:{port}"


# Machine facts that replicas (other processes) must see as the CLI does.
_FORWARDED_ENV = (
    "LORAG_CACHE_DIR", "HF_HOME", "HF_HUB_OFFLINE", "RAY_USAGE_STATS_ENABLED",
    "VLLM_NO_USAGE_STATS", "DO_NOT_TRACK", "TOKENIZERS_PARALLELISM",
    "VLLM_CPU_KVCACHE_SPACE", "VLLM_CPU_OMP_THREADS_BIND", "LORAG_DATA_DIR",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED", "RAY_SERVE_ENABLE_HA_PROXY",
    "RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT",
    "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S",
)


def check_auth(config: LoragConfig, host: str | None = None) -> str:
    """Fail before start-up on an unusable auth setting; return the line to print."""
    from serving.auth import KeyStore

    host = host or config.server.host
    auth = config.server.auth
    if not auth.enabled:
        server = config.server.model_copy(update={"host": host})
        if not server.loopback():
            raise ConfigError(f"server.auth.enabled is false, which is for local use only, "
                              f"but the server would listen on {host!r}; bind 127.0.0.1 or "
                              "configure API keys (lorag keys create)")
        return ("lorag: API AUTH IS OFF (server.auth.enabled: false): anyone who can reach "
                f"{host} may call every endpoint. Local use only.")
    try:
        store = KeyStore.from_config(auth)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    return f"lorag: API keys required on /v1 ({len(store.names)} keys: {', '.join(store.names)})"


def _cmd_serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    auth_line = check_auth(config, args.host)
    print(auth_line, flush=True)
    prepare_models(config)
    url = start_server(config, host=args.host, port=args.port)
    print(f"lorag is serving at {url} (routes: {', '.join(r.name for r in config.routes)})",
          flush=True)
    print(auth_line, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    from ray import serve

    print("shutting down", flush=True)
    serve.shutdown()
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    prepare_models(load_config(args.config))
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from serving.ingest import ingest_paths

    return ingest_paths(args.paths, index=args.index, url=args.url, create=args.create,
                        batch_size=args.batch_size)


def _cmd_eval(args: argparse.Namespace) -> int:
    from evaluation.command import run_command

    return run_command(args)


def _cmd_eval_compare(args: argparse.Namespace) -> int:
    from evaluation.command import compare_command

    return compare_command(args)


def _cmd_adapters_train(args: argparse.Namespace) -> int:
    from adapters.training import run_command

    return run_command(args)


def _cmd_k8s_render(args: argparse.Namespace) -> int:
    from serving.k8s_cli import run_render

    return run_render(args)


def build_parser() -> argparse.ArgumentParser:
    # The evaluation package is imported here, not when this module is (it sits
    # above serving; docs/architecture.md).
    from evaluation.command import add_arguments as add_eval_arguments

    parser = argparse.ArgumentParser(prog="lorag", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="serve a config on Ray Serve")
    serve_p.add_argument("--config", help="YAML config (default: configs/default.yaml)")
    serve_p.add_argument("--host", help="override server.host")
    serve_p.add_argument("--port", type=int, help="override server.port")
    serve_p.set_defaults(func=_cmd_serve)
    prep = sub.add_parser("prepare-model",
                          help="prepare builtin models and embedders into the cache")
    prep.add_argument("--config", help="YAML config (default: configs/default.yaml)")
    prep.set_defaults(func=_cmd_prepare)
    ingest = sub.add_parser("ingest", help="add .md/.rst/.adoc/.txt/.html files to an index")
    ingest.add_argument("paths", nargs="+", help="files or folders (searched recursively)")
    ingest.add_argument("--index", required=True, help="index name")
    ingest.add_argument("--url", default="http://127.0.0.1:8000", help="lorag server URL")
    ingest.add_argument("--create", action="store_true", help="create the index if missing")
    ingest.add_argument("--batch-size", type=int, default=16, help="files per request")
    ingest.set_defaults(func=_cmd_ingest)
    evaluate = sub.add_parser(
        "eval", help="score every route on a corpus and question set (accuracy, retrieval "
        "recall, citations, JSON format, latency)")
    add_eval_arguments(evaluate)
    evaluate.set_defaults(func=_cmd_eval)
    compare = sub.add_parser(
        "eval-compare", help="compare two `lorag eval` runs question by question (which "
        "answers a change fixed or broke, and whether that can be luck)")
    compare.add_argument("baseline", type=Path, help="the earlier run's eval.json")
    compare.add_argument("current", type=Path, help="the later run's eval.json")
    compare.set_defaults(func=_cmd_eval_compare)
    adapters = sub.add_parser("adapters", help="LoRA adapter tools")
    adapters_sub = adapters.add_subparsers(dest="adapters_command", required=True)
    train = adapters_sub.add_parser("train", help="fine-tune a LoRA adapter on chat pairs")
    add_train_arguments(train)
    train.set_defaults(func=_cmd_adapters_train)
    from serving.keys_cli import add_arguments as add_keys_arguments

    add_keys_arguments(sub.add_parser("keys", help="API keys: create, list, revoke"))
    k8s = sub.add_parser("k8s", help="Kubernetes (KubeRay) manifests")
    k8s_sub = k8s.add_subparsers(dest="k8s_command", required=True)
    render = k8s_sub.add_parser(
        "render", help="render a KubeRay RayService (+ ConfigMap, Secret, PVC) from a config")
    add_render_arguments(render)
    render.set_defaults(func=_cmd_k8s_render)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as err:
        print(f"lorag: config error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
