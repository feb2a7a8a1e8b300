"""Check a PEFT LoRA folder before an engine ever sees it.

Checks: `adapter_config.json` present and valid JSON, `peft_type` LORA, the
base model it was trained on matches the serving model, rank at most the
engine's `max_lora_rank`, target modules the engine supports, weights present,
total size under a limit. Every failure is an InvalidInputError naming what is wrong.

Example::

    info = validate_adapter(Path("adapters/samples/json-format"), AdapterLimits(
        base_models={"smollm2-135m-instruct"}, max_lora_rank=16))
    info.rank, info.content_hash
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from adapters.errors import InvalidInputError

__all__ = ["WEIGHT_FILES", "LLAMA_LORA_MODULES", "AdapterLimits", "AdapterInfo",
           "normalize_model_name", "folder_hash", "validate_adapter", "inside_roots"]

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
# Linear layers vLLM can put a LoRA on in Llama-family models (q/k/v are packed
# into qkv_proj and gate/up into gate_up_proj inside vLLM; PEFT names them apart).
LLAMA_LORA_MODULES = frozenset({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                "up_proj", "down_proj"})


@dataclass(frozen=True)
class AdapterLimits:
    base_models: set[str]
    max_lora_rank: int
    supported_modules: frozenset[str] = LLAMA_LORA_MODULES
    max_size_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class AdapterInfo:
    path: Path
    rank: int
    alpha: float
    target_modules: tuple[str, ...]
    base_model: str
    size_bytes: int
    content_hash: str
    files: tuple[str, ...] = field(default=())


def _bad(message: str, code: str) -> InvalidInputError:
    return InvalidInputError(message, param="source", code=code)


def normalize_model_name(name: str) -> str:
    """'HuggingFaceTB/SmolLM2-135M-Instruct', '/cache/smollm2-135m-instruct/' -> same key."""
    name = name.rstrip("/").removeprefix("builtin:")
    return name.rsplit("/", 1)[-1].lower()


def folder_hash(path: Path) -> tuple[str, int, tuple[str, ...]]:
    """sha256 over (relative name, bytes) of every file, in name order; total size."""
    digest, total, names = hashlib.sha256(), 0, []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        names.append(rel)
        digest.update(rel.encode() + b"\0")
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                total += len(block)
    return digest.hexdigest(), total, tuple(names)


def validate_adapter(path: Path, limits: AdapterLimits) -> AdapterInfo:
    path = Path(path)
    if not path.is_dir():
        raise _bad("adapter folder not found.", "adapter_not_found")
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    if size > limits.max_size_bytes:
        raise _bad(f"adapter is {size} bytes; the limit is {limits.max_size_bytes}.",
                   "adapter_too_large")
    config_file = path / "adapter_config.json"
    if not config_file.is_file():
        raise _bad("adapter_config.json is missing: not a PEFT adapter folder.",
                   "invalid_adapter")
    try:
        cfg = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad("adapter_config.json is not valid JSON.", "invalid_adapter") from None
    if not isinstance(cfg, dict) or str(cfg.get("peft_type", "")).upper() != "LORA":
        raise _bad(f"peft_type is {cfg.get('peft_type') if isinstance(cfg, dict) else None!r}; "
                   "only LORA adapters are served.", "unsupported_adapter")
    rank = cfg.get("r")
    if not isinstance(rank, int) or rank < 1:
        raise _bad("adapter_config.json has no valid rank `r`.", "invalid_adapter")
    if rank > limits.max_lora_rank:
        raise _bad(f"adapter rank {rank} exceeds the engine's max_lora_rank "
                   f"{limits.max_lora_rank}.", "rank_too_large")
    base = str(cfg.get("base_model_name_or_path") or "")
    if normalize_model_name(base) not in {normalize_model_name(b) for b in limits.base_models}:
        raise _bad(f"adapter was trained on {base or 'an unnamed model'!r}, not on the "
                   f"serving model ({', '.join(sorted(limits.base_models))}).",
                   "base_model_mismatch")
    targets = cfg.get("target_modules") or []
    if isinstance(targets, str):
        raise _bad("target_modules given as a regex; list the module names.",
                   "unsupported_target_modules")
    unsupported = sorted(set(targets) - limits.supported_modules)
    if not targets or unsupported:
        raise _bad(f"target modules {unsupported or targets} are not supported; supported: "
                   f"{', '.join(sorted(limits.supported_modules))}.", "unsupported_target_modules")
    if not any((path / w).is_file() for w in WEIGHT_FILES):
        raise _bad("adapter weights (adapter_model.safetensors) are missing.", "invalid_adapter")
    digest, total, names = folder_hash(path)
    return AdapterInfo(path=path, rank=rank, alpha=float(cfg.get("lora_alpha", rank)),
                       target_modules=tuple(sorted(targets)), base_model=base,
                       size_bytes=total, content_hash=digest, files=names)


def inside_roots(path: str, roots: list[Path]) -> Path:
    """Resolve `path` and refuse anything outside the allowed roots (`../../etc`, symlinks)."""
    real = Path(os.path.realpath(path))
    for root in roots:
        root_real = os.path.realpath(root)
        if os.path.commonpath([root_real, str(real)]) == root_real:
            return real
    raise InvalidInputError("adapter path is outside the allowed adapter roots.",
                            param="source", code="path_not_allowed")
