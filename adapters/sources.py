"""Where adapters come from: one interface, one strategy per kind of source.

    /abs/path or file:///abs/path   a local folder, inside the configured roots
    hf://org/name[@revision]        a Hugging Face hub repo (where a hub is reachable)
    s3://bucket/prefix (gs://, ...) an object store through fsspec; S3-compatible
                                    stores take `endpoint_url` in storage options

Each strategy copies the adapter into a destination folder the caller owns, so
that a registered version is frozen: editing the source afterwards changes
nothing that is served.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from adapters.errors import InvalidInputError, SourceUnavailableError
from adapters.validation import inside_roots


__all__ = ["AdapterSource", "LocalSource", "HubSource", "FsspecSource", "SourceResolver"]


class AdapterSource(Protocol):
    def fetch(self, uri: str, dest: Path) -> None:
        """Copy the adapter at `uri` into the empty folder `dest`."""


class LocalSource:
    def __init__(self, roots: list[Path]):
        self.roots = [Path(r) for r in roots]

    def fetch(self, uri: str, dest: Path) -> None:
        path = uri.removeprefix("file://")
        real = inside_roots(path, self.roots)
        if not real.is_dir():
            raise InvalidInputError("adapter folder not found.", param="source",
                                    code="adapter_not_found")
        shutil.copytree(real, dest, dirs_exist_ok=True, symlinks=False)


class HubSource:
    def fetch(self, uri: str, dest: Path) -> None:
        repo, _, revision = uri.removeprefix("hf://").partition("@")
        if repo.count("/") != 1:
            raise InvalidInputError("hub sources look like hf://org/name[@revision].",
                                    param="source", code="invalid_source")
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        try:
            snapshot_download(repo, revision=revision or None, local_dir=dest)
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
            raise SourceUnavailableError(
                f"could not download {repo} from the Hugging Face hub: "
                f"{type(err).__name__}") from None


class FsspecSource:
    def __init__(self, storage_options: dict[str, dict[str, Any]] | None = None):
        self.storage_options = storage_options or {}

    def fetch(self, uri: str, dest: Path) -> None:
        import fsspec

        scheme = urlparse(uri).scheme
        try:
            fs, root = fsspec.core.url_to_fs(uri, **self.storage_options.get(scheme, {}))
        except (ImportError, ValueError) as err:
            raise InvalidInputError(f"cannot open {scheme}:// sources here: {err}",
                                    param="source", code="unsupported_source") from None
        try:
            files = [f for f in fs.find(root) if not f.endswith("/")]
            if not files:
                raise InvalidInputError("no adapter files at that location.",
                                        param="source", code="adapter_not_found")
            for f in files:
                rel = f[len(root.rstrip("/")) + 1:]
                if not rel or ".." in Path(rel).parts:
                    continue
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(f, str(target))
        except (OSError, PermissionError) as err:
            raise SourceUnavailableError(
                f"could not read the adapter from {scheme}://: {type(err).__name__}") from None


class SourceResolver:
    """Picks the strategy by URI scheme; an unknown scheme is an InvalidInputError."""

    OBJECT_STORES = ("s3", "gs", "az", "memory")

    def __init__(self, local_roots: list[Path],
                 storage_options: dict[str, dict[str, Any]] | None = None,
                 allowed_schemes: list[str] | None = None):
        self.local = LocalSource(local_roots)
        self.hub = HubSource()
        self.objects = FsspecSource(storage_options)
        self.allowed = list(allowed_schemes or ["file", "hf", "s3"])

    def fetch(self, uri: str, dest: Path) -> None:
        if not isinstance(uri, str) or not uri:
            raise InvalidInputError("source must be a non-empty string.", param="source")
        scheme = urlparse(uri).scheme or "file"
        if scheme not in self.allowed:
            known = ", ".join(f"{s}://" if s != "file" else "a local path" for s in self.allowed)
            raise InvalidInputError(
                f"source scheme {scheme!r} is not accepted here; use {known}.",
                param="source", code="unsupported_source")
        if scheme == "file":
            return self.local.fetch(uri, dest)
        if scheme == "hf":
            return self.hub.fetch(uri, dest)
        if scheme in self.OBJECT_STORES:
            return self.objects.fetch(uri, dest)
        raise InvalidInputError(f"unknown source scheme {scheme!r}.", param="source",
                                code="unsupported_source")
