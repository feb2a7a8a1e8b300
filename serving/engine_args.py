"""Turn a ModelConfig into vLLM's own CLI arguments.

Both lorag's LLM deployment and vLLM's reference server
(`python -m vllm.entrypoints.openai.api_server`, used by the comparison
benchmark) are started from this one list, so they run the same engine.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from serving.memory_plan import (  # noqa: F401 (re-exported)
    CPU_FALLBACK_MEMORY_UTILIZATION,
    GPU_DEFAULT_MEMORY_UTILIZATION,
    MemoryPlan,
    ModelDoesNotFitError,
    plan_memory,
    run_dtype,
)
from serving.model_config import ModelConfig


__all__ = ["has_cuda_device", "engine_cli_args", "parse_engine_args"]


def has_cuda_device() -> bool:
    """True when an NVIDIA GPU answers on this machine (what `make` checks too)."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _flag(name: str, value: Any) -> list[str]:
    flag = "--" + name.replace("_", "-")
    if value is True:
        return [flag]
    if value is False:
        return ["--no-" + name.replace("_", "-")]
    if isinstance(value, (list, tuple)):
        return [flag, *map(str, value)]
    if isinstance(value, dict):
        import json

        return [flag, json.dumps(value)]
    return [flag, str(value)]


def engine_cli_args(
    model: ModelConfig,
    model_path: str,
    served_names: list[str],
    *,
    on_gpu: bool | None = None,
    available_memory: int | None = None,
    plan: MemoryPlan | None = None,
) -> list[str]:
    """vLLM CLI arguments for this model, with device-dependent defaults resolved.

    The KV cache's size comes from `plan` (default: `plan_memory` on `model_path`, the
    model's folder, with `available_memory` bytes free, or what is free now); it
    raises `ModelDoesNotFitError` when the model cannot start on this CPU.

    >>> engine_cli_args(cfg.models["smollm2"], "/cache/smol", ["base"], on_gpu=False)[:4]
    ['--model', '/cache/smol', '--served-model-name', 'base']
    """
    if on_gpu is None:
        on_gpu = plan.on_gpu if plan is not None else has_cuda_device()
    if plan is None:
        plan = plan_memory(model, model_path, on_gpu=on_gpu, available=available_memory)
    e = model.engine
    args = ["--model", model_path, "--served-model-name", *served_names]
    if model.tokenizer:
        args += ["--tokenizer", model.tokenizer]
    args += _flag("dtype", run_dtype(model, on_gpu))
    args += _flag("max_model_len", e.max_model_len)
    args += _flag("max_num_seqs", e.max_num_seqs)
    args += plan.cli_args()
    args += _flag("seed", e.seed)
    eager = e.enforce_eager if e.enforce_eager is not None else not on_gpu
    if eager:
        args += ["--enforce-eager"]
    if e.enable_lora:
        args += ["--enable-lora"]
        args += _flag("max_lora_rank", e.max_lora_rank)
        args += _flag("max_loras", e.max_loras)
        args += _flag("max_cpu_loras", e.max_cpu_loras or e.max_loras)
    if e.compact_json and "structured-outputs-config" not in e.extra_args \
            and "structured_outputs_config" not in e.extra_args:
        # disable_any_whitespace needs an explicit backend ("auto" refuses it). guidance, as
        # it reads the layout the ingress puts in JSON schemas (route_settings.JSON_LAYOUT).
        args += _flag("structured_outputs_config",
                      {"backend": "guidance", "disable_any_whitespace": True})
    for name, value in e.extra_args.items():
        args += _flag(name, value)
    return args


def parse_engine_args(cli_args: list[str]):
    """Parse with vLLM's own server parser, so every default is vLLM's."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser(prog="lorag-engine"))
    return parser.parse_args(cli_args)
