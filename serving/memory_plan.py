"""How much memory the KV cache of one vLLM engine gets, decided before it starts.

On CPU, vLLM sizes the KV cache as ``gpu_memory_utilization * RAM`` minus the
engine's resident memory *including the weights*, so a fixed share either wastes
RAM on a small model or cannot start a large one (Qwen2.5-Coder-1.5B in float32,
~6 GB of weights: "requested memory for kv (-2.4/7.08 GiB)" at 0.3 of 24 GiB).
So on CPU lorag passes an explicit ``--kv-cache-memory-bytes`` instead:

    kv_bytes_per_token = 2 * layers * kv_heads * head_dim * dtype_bytes   (config.json)
    demand  = kv_bytes_per_token * (max_num_seqs * max_model_len + one block)
    room    = available - weights - reserve,  reserve = 1.5 GiB + 20% of the weights
    kv      = min(demand, room / 2)                       (whole MiB)
    minimum = kv_bytes_per_token * (max_model_len + one block): one full sequence

`available` is what the machine (or the cgroup v2 limit, whichever is smaller) has
free now; the weights are the size of the model's safetensors (or .bin) files. The
reserve covers the engine process's runtime (Python, torch, the LoRA slots) and its
activations; half of the room is left to the other processes (other replicas, the
retriever), every batched sequence may hold a full context. A model whose minimum
does not fit raises `ModelDoesNotFitError`, naming the settings to change.

`engine.kv_cache_memory_gib` sets the size outright (CPU and GPU);
`engine.gpu_memory_utilization` restores vLLM's own sizing; on GPU nothing changes
(vLLM's profiling with gpu_memory_utilization 0.9).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.model_config import ModelConfig

__all__ = ["GiB", "MiB", "CPU_FALLBACK_MEMORY_UTILIZATION",
           "GPU_DEFAULT_MEMORY_UTILIZATION", "RESERVE_FIXED_BYTES", "RESERVE_WEIGHT_SHARE",
           "ROOM_SHARE", "BLOCK_TOKENS", "CGROUP_DIR", "ModelDoesNotFitError", "ModelShape",
           "MemoryPlan", "dtype_bytes", "read_model_shape", "weights_bytes",
           "available_memory", "run_dtype", "plan_memory"]

logger = logging.getLogger(__name__)

GiB = 1 << 30
MiB = 1 << 20
CPU_FALLBACK_MEMORY_UTILIZATION = 0.3  # when the model's config.json is not on disk
GPU_DEFAULT_MEMORY_UTILIZATION = 0.9
RESERVE_FIXED_BYTES = int(1.5 * GiB)  # runtime of the engine process: Python, torch, ...
RESERVE_WEIGHT_SHARE = 0.2  # activations and buffers grow with the model
ROOM_SHARE = 0.5  # the rest of the room stays free for other processes
# vLLM allocates whole blocks (128 tokens by default on CPU, 256 at most) and keeps one
# (the null block) back: a sequence is counted in whole 256-token blocks, plus one.
BLOCK_TOKENS = 256
CGROUP_DIR = "/sys/fs/cgroup"

_DTYPE_BYTES = {
    "float32": 4, "float": 4, "fp32": 4,
    "bfloat16": 2, "float16": 2, "half": 2, "fp16": 2, "bf16": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1, "fp8_ds_mla": 1, "int8": 1,
}


class ModelDoesNotFitError(ValueError):
    """The model's weights plus one full-length sequence of KV cache do not fit in the
    memory this machine has free; the message names the settings to change."""


@dataclass(frozen=True)
class ModelShape:
    """What the KV cache of one token costs, read from the model's config.json."""

    layers: int
    kv_heads: int
    head_dim: int
    file_dtype: str | None  # the dtype of the weights on disk, when config.json says
    quantized: bool

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


@dataclass(frozen=True)
class MemoryPlan:
    """The memory arguments of one engine, and why (``describe()`` is the log line)."""

    on_gpu: bool
    kv_cache_bytes: int | None = None  # -> --kv-cache-memory-bytes
    gpu_memory_utilization: float | None = None  # -> --gpu-memory-utilization
    reason: str = ""
    weights_bytes: int | None = None
    available_bytes: int | None = None
    reserve_bytes: int | None = None
    demand_bytes: int | None = None
    per_token_bytes: int | None = None
    max_num_seqs: int | None = None
    max_model_len: int | None = None

    def cli_args(self) -> list[str]:
        args = []
        if self.kv_cache_bytes is not None:
            args += ["--kv-cache-memory-bytes", str(self.kv_cache_bytes)]
        if self.gpu_memory_utilization is not None:
            args += ["--gpu-memory-utilization", str(self.gpu_memory_utilization)]
        return args

    def describe(self) -> str:
        device = "GPU" if self.on_gpu else "CPU"
        if self.kv_cache_bytes is None and self.gpu_memory_utilization is None:
            return f"KV cache on {device} as {self.reason} set it"
        if self.kv_cache_bytes is None:
            share = self.gpu_memory_utilization
            return (f"KV cache sized by vLLM on {device} from gpu_memory_utilization "
                    f"{share}" + (f" ({self.reason})" if self.reason else ""))
        line = f"KV cache {_gib(self.kv_cache_bytes)} on {device} ({self.reason})"
        if self.weights_bytes is None:
            return line
        room = self.available_bytes - self.weights_bytes - self.reserve_bytes
        return (f"{line}: weights {_gib(self.weights_bytes)}, "
                f"{_gib(self.available_bytes)} available, reserve {_gib(self.reserve_bytes)}, "
                f"room {_gib(room)} (half for the KV cache), demand {_gib(self.demand_bytes)} "
                f"= {self.max_num_seqs} sequences x {self.max_model_len} tokens x "
                f"{self.per_token_bytes // 1024} KiB per token")


def _gib(n: int) -> str:
    return f"{n / GiB:.2f} GiB"


def dtype_bytes(dtype: str) -> int:
    try:
        return _DTYPE_BYTES[str(dtype).lower().removeprefix("torch.")]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}") from None


def read_model_shape(model_path: str | os.PathLike) -> ModelShape:
    """Layers, KV heads and head size from `model_path`/config.json (OSError, ValueError
    or KeyError when it cannot be read)."""
    cfg = json.loads((Path(model_path) / "config.json").read_text())
    if not isinstance(cfg, dict):
        raise ValueError("config.json is not an object")
    text = cfg.get("text_config")  # multimodal models keep the LLM's shape there
    if isinstance(text, dict):
        cfg = {**cfg, **{k: v for k, v in text.items() if v is not None}}
    heads = int(cfg["num_attention_heads"])
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or int(cfg["hidden_size"]) // heads
    file_dtype = cfg.get("torch_dtype") or cfg.get("dtype")
    return ModelShape(layers=int(cfg["num_hidden_layers"]), kv_heads=int(kv_heads),
                      head_dim=int(head_dim),
                      file_dtype=str(file_dtype) if file_dtype else None,
                      quantized="quantization_config" in cfg)


def weights_bytes(model_path: str | os.PathLike) -> int:
    """Size of the weight files in `model_path` (safetensors, else PyTorch .bin)."""
    folder = Path(model_path)
    for pattern in ("*.safetensors", "*.bin"):
        files = [f for f in folder.glob(pattern) if f.is_file()]
        if files:
            return sum(f.stat().st_size for f in files)
    raise FileNotFoundError(f"no *.safetensors or *.bin weights in {folder}")


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None  # missing, or "max"


def available_memory(cgroup_dir: str | os.PathLike = CGROUP_DIR) -> int:
    """Bytes this process may still use: the machine's available memory, or less under
    a cgroup v2 limit (memory.max minus what the group uses, its reclaimable inactive
    page cache not counted, as the kubelet counts a pod's working set)."""
    import psutil

    available = psutil.virtual_memory().available
    group = Path(cgroup_dir)
    limit = _read_int(group / "memory.max")
    if limit is not None:
        used = _read_int(group / "memory.current") or 0
        try:
            stat = dict(line.split() for line in (group / "memory.stat").read_text().splitlines()
                        if line.count(" ") == 1)
            used -= int(stat.get("inactive_file", 0))
        except (OSError, ValueError):
            pass
        available = min(available, max(0, limit - max(0, used)))
    return available


def run_dtype(model: ModelConfig, on_gpu: bool) -> str:
    """The dtype the engine runs in: auto means float32 on CPU, the model's on GPU."""
    return model.engine.dtype if model.engine.dtype != "auto" or on_gpu else "float32"


def _extra(model: ModelConfig, name: str) -> Any:
    extra = model.engine.extra_args
    return extra.get(name, extra.get(name.replace("_", "-")))


def plan_memory(model: ModelConfig, model_path: str, *, on_gpu: bool,
                available: int | None = None) -> MemoryPlan:
    """The memory arguments of `model`'s engine (see the module's doc).

    `available`: bytes free for this engine (default: `available_memory()` now).
    Raises `ModelDoesNotFitError` when a CPU engine cannot hold the weights and one
    full sequence.
    """
    plan = _configured_plan(model, on_gpu)
    if plan is not None:
        return plan
    try:
        shape = read_model_shape(model_path)
        weights = weights_bytes(model_path)
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("cannot size the KV cache of %s from its files (%s); vLLM sizes it "
                       "from gpu_memory_utilization %s of RAM instead (set "
                       "engine.kv_cache_memory_gib to choose)", model.source, err,
                       CPU_FALLBACK_MEMORY_UTILIZATION)
        return MemoryPlan(False, gpu_memory_utilization=CPU_FALLBACK_MEMORY_UTILIZATION,
                          reason=f"fallback: {model_path}/config.json or weights unreadable")
    return _sized_plan(model, model_path, shape, weights, on_gpu=on_gpu, available=available)


def _configured_plan(model: ModelConfig, on_gpu: bool) -> MemoryPlan | None:
    """The plan when a setting decides it (the config, vLLM's own arguments, a GPU,
    VLLM_CPU_KVCACHE_SPACE); None when lorag sizes the KV cache from free memory."""
    e = model.engine
    util = e.gpu_memory_utilization
    if e.kv_cache_memory_gib is not None:
        return MemoryPlan(on_gpu, kv_cache_bytes=int(e.kv_cache_memory_gib * GiB),
                          gpu_memory_utilization=util or (
                              GPU_DEFAULT_MEMORY_UTILIZATION if on_gpu else None),
                          reason="engine.kv_cache_memory_gib")
    if util is not None:
        return MemoryPlan(on_gpu, gpu_memory_utilization=util,
                          reason="engine.gpu_memory_utilization")
    if _extra(model, "kv_cache_memory_bytes") is not None or \
            _extra(model, "gpu_memory_utilization") is not None:
        return MemoryPlan(on_gpu, reason="engine.extra_args")  # they pass as given
    if on_gpu:
        return MemoryPlan(True, gpu_memory_utilization=GPU_DEFAULT_MEMORY_UTILIZATION)
    if os.environ.get("VLLM_CPU_KVCACHE_SPACE"):  # vLLM would override ours with it
        space = int(os.environ["VLLM_CPU_KVCACHE_SPACE"])
        return MemoryPlan(False, kv_cache_bytes=space * GiB, reason="VLLM_CPU_KVCACHE_SPACE")
    return None


def _sized_plan(model: ModelConfig, model_path: str, shape: ModelShape, weights: int, *,
                on_gpu: bool, available: int | None) -> MemoryPlan:
    """The KV cache sized from free memory (the module's doc): `weights` is the size of
    the weight files; raises `ModelDoesNotFitError` below one full sequence."""
    e = model.engine
    run_bytes = dtype_bytes(run_dtype(model, on_gpu))
    kv_dtype = _extra(model, "kv_cache_dtype")
    kv_bytes = dtype_bytes(kv_dtype) if kv_dtype not in (None, "auto") else run_bytes
    if shape.file_dtype and not shape.quantized:
        try:  # float32 in memory from bfloat16 files doubles the weights
            weights = weights * run_bytes // dtype_bytes(shape.file_dtype)
        except ValueError:
            pass
    per_token = shape.kv_bytes_per_token(kv_bytes)
    seq_tokens = math.ceil(e.max_model_len / BLOCK_TOKENS) * BLOCK_TOKENS
    demand = per_token * (e.max_num_seqs * seq_tokens + BLOCK_TOKENS)
    minimum = per_token * (seq_tokens + BLOCK_TOKENS)
    if available is None:
        available = available_memory()
    reserve = RESERVE_FIXED_BYTES + int(RESERVE_WEIGHT_SHARE * weights)
    room = available - weights - reserve
    kv = min(math.ceil(demand / MiB) * MiB, int(room * ROOM_SHARE) // MiB * MiB)
    plan = MemoryPlan(False, kv_cache_bytes=kv, reason="sized from free memory",
                      weights_bytes=weights, available_bytes=available, reserve_bytes=reserve,
                      demand_bytes=demand, per_token_bytes=per_token,
                      max_num_seqs=e.max_num_seqs, max_model_len=e.max_model_len)
    if kv < minimum:
        raise _does_not_fit(model, model_path, plan, room=room, minimum=minimum,
                            dtype=run_dtype(model, on_gpu))
    return plan


def _does_not_fit(model: ModelConfig, model_path: str, plan: MemoryPlan, *, room: int,
                  minimum: int, dtype: str) -> ModelDoesNotFitError:
    """The error for a sized `plan` whose KV cache is below `minimum` (one full
    sequence), naming the settings to change."""
    kv, weights = plan.kv_cache_bytes, plan.weights_bytes
    name = model.source if model.source == model_path else f"{model.source} ({model_path})"
    left = (f"{_gib(room)} is left, half of which ({_gib(kv)}) may go to the KV cache"
            if room > 0 else "nothing is left")
    return ModelDoesNotFitError(
        f"model {name} does not fit in memory on CPU: its weights take "
        f"{_gib(weights)} ({dtype}) and one full sequence of "
        f"engine.max_model_len={plan.max_model_len} tokens needs {minimum / MiB:.0f} MiB "
        f"of KV cache ({plan.per_token_bytes // 1024} KiB per token), but only "
        f"{_gib(plan.available_bytes)} is available: after the weights and a "
        f"{_gib(plan.reserve_bytes)} reserve for the runtime and activations, {left}. "
        "Lower engine.max_model_len, set engine.kv_cache_memory_gib explicitly, free "
        "memory or give the machine more, or serve a smaller model.")
