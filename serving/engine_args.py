"""Turn a ModelConfig into vLLM's own CLI arguments.

Both lorag's LLM deployment and vLLM's reference server
(`python -m vllm.entrypoints.openai.api_server`, used by the comparison
benchmark) are started from this one list, so they run the same engine.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from serving.model_config import ModelConfig

CPU_DEFAULT_MEMORY_UTILIZATION = 0.3
GPU_DEFAULT_MEMORY_UTILIZATION = 0.9


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
) -> list[str]:
    """vLLM CLI arguments for this model, with device-dependent defaults resolved.

    >>> engine_cli_args(cfg.models["smollm2"], "/cache/smol", ["base"], on_gpu=False)[:4]
    ['--model', '/cache/smol', '--served-model-name', 'base']
    """
    if on_gpu is None:
        on_gpu = has_cuda_device()
    e = model.engine
    dtype = e.dtype if e.dtype != "auto" or on_gpu else "float32"
    mem = e.gpu_memory_utilization or (
        GPU_DEFAULT_MEMORY_UTILIZATION if on_gpu else CPU_DEFAULT_MEMORY_UTILIZATION
    )
    args = ["--model", model_path, "--served-model-name", *served_names]
    if model.tokenizer:
        args += ["--tokenizer", model.tokenizer]
    args += _flag("dtype", dtype)
    args += _flag("max_model_len", e.max_model_len)
    args += _flag("max_num_seqs", e.max_num_seqs)
    args += _flag("gpu_memory_utilization", mem)
    args += _flag("seed", e.seed)
    eager = e.enforce_eager if e.enforce_eager is not None else not on_gpu
    if eager:
        args += ["--enforce-eager"]
    if e.enable_lora:
        args += ["--enable-lora"]
        args += _flag("max_lora_rank", e.max_lora_rank)
        args += _flag("max_loras", e.max_loras)
        args += _flag("max_cpu_loras", e.max_cpu_loras or e.max_loras)
    for name, value in e.extra_args.items():
        args += _flag(name, value)
    return args


def parse_engine_args(cli_args: list[str]):
    """Parse with vLLM's own server parser, so every default is vLLM's."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser(prog="lorag-engine"))
    return parser.parse_args(cli_args)
