"""Registered LoRA adapters with versions, persisted so that a restart serves the same ones.

    <data_dir>/adapters/registry.json                 name -> versions, active version
    <data_dir>/adapters/store/<name>/<hash[:16]>/     the frozen PEFT folder of a version

`register(name, source, base_model=..., limits=...)` fetches the source into a
private folder, validates it, and records a new version (content hash of the
files); `activate=False` records it without serving it yet. Registering the same
content again is a no-op that returns the existing version. Each version gets a
never-reused integer `lora_int_id`, so an engine cache can never serve an old
version's weights under a new version's name.

Thread-safe: one lock; registry.json is replaced atomically.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from adapters.errors import AdapterNotFoundError, InvalidInputError
from adapters.sources import SourceResolver
from adapters.validation import AdapterLimits, validate_adapter

__all__ = ["AdapterVersion", "AdapterRegistry"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class AdapterVersion:
    name: str
    version: str
    content_hash: str
    lora_int_id: int
    source: str
    base_model: str
    path: str
    rank: int
    size_bytes: int
    created_at: float

    @property
    def served_id(self) -> str:
        """Engine-side name of this exact version."""
        return f"{self.name}@{self.version}"


class AdapterRegistry:
    def __init__(self, data_dir: Path, resolver: SourceResolver):
        self.root = Path(data_dir) / "adapters"
        self.store = self.root / "store"
        self.store.mkdir(parents=True, exist_ok=True)
        self.resolver = resolver
        self._lock = threading.RLock()
        self._state = self._read()

    def _read(self) -> dict:
        path = self.root / "registry.json"
        if not path.exists():
            return {"next_lora_int_id": 1, "adapters": {}}
        return json.loads(path.read_text())

    def _write(self) -> None:
        tmp = self.root / "registry.json.tmp"
        with open(tmp, "w") as f:
            json.dump(self._state, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / "registry.json")

    def register(self, name: str, source: str, *, base_model: str, limits: AdapterLimits,
                 version: str | None = None, activate: bool = True) -> AdapterVersion:
        """Fetch, validate and record a version; `activate=False` leaves the active one."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise InvalidInputError("adapter name must be 1-64 letters, digits, '.', '_' or "
                                    "'-'.", param="name", code="invalid_value")
        if version is not None and not _NAME_RE.match(str(version)):
            raise InvalidInputError("invalid version label.", param="version")
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.store))
        try:
            self.resolver.fetch(source, staging)
            info = validate_adapter(staging, limits)
            with self._lock:
                entry = self._state["adapters"].setdefault(name, {"versions": [], "active": None})
                for v in entry["versions"]:
                    if v["content_hash"] == info.content_hash and v["base_model"] == base_model:
                        if activate:
                            entry["active"] = v["version"]
                            self._write()
                        return AdapterVersion(**v)
                label = str(version or len(entry["versions"]) + 1)
                if any(v["version"] == label for v in entry["versions"]):
                    raise InvalidInputError(f"version {label!r} of {name!r} exists with "
                                            "other content.", param="version",
                                            code="version_exists")
                final = self.store / name / info.content_hash[:16]
                final.parent.mkdir(parents=True, exist_ok=True)
                if not final.exists():
                    os.replace(staging, final)
                record = AdapterVersion(
                    name=name, version=label, content_hash=info.content_hash,
                    lora_int_id=self._state["next_lora_int_id"], source=source,
                    base_model=base_model, path=str(final), rank=info.rank,
                    size_bytes=info.size_bytes,
                    created_at=time.time())
                self._state["next_lora_int_id"] += 1
                entry["versions"].append(asdict(record))
                if activate:
                    entry["active"] = label
                self._write()
                return record
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def active(self, name: str) -> AdapterVersion:
        found = self.active_or_none(name)
        if found is None:
            raise AdapterNotFoundError(f"adapter {name!r} is not loaded.", param=None,
                                       code="adapter_not_found")
        return found

    def activate(self, name: str, version: str) -> AdapterVersion:
        with self._lock:
            entry = self._state["adapters"].get(name) or {"versions": []}
            for v in entry["versions"]:
                if v["version"] == version:
                    entry["active"] = version
                    self._write()
                    return AdapterVersion(**v)
            raise AdapterNotFoundError(f"adapter {name!r} has no version {version!r}.",
                                       param="version", code="adapter_not_found")

    def discard(self, name: str, version: str) -> None:
        """Forget a version that never became active (its engine load failed)."""
        with self._lock:
            entry = self._state["adapters"].get(name)
            if entry is None or entry["active"] == version:
                return
            kept = [v for v in entry["versions"] if v["version"] != version]
            gone = [v for v in entry["versions"] if v["version"] == version]
            entry["versions"] = kept
            if not kept:
                del self._state["adapters"][name]
            self._write()
            for v in gone:
                if not any(k["path"] == v["path"] for k in kept):
                    shutil.rmtree(v["path"], ignore_errors=True)

    def active_or_none(self, name: str) -> AdapterVersion | None:
        with self._lock:
            entry = self._state["adapters"].get(name)
            if not entry or entry["active"] is None:
                return None
            return next(AdapterVersion(**v) for v in entry["versions"]
                        if v["version"] == entry["active"])

    def unregister(self, name: str) -> AdapterVersion:
        """Stop serving `name`; its files stay until no request can still use them."""
        with self._lock:
            current = self.active(name)
            self._state["adapters"][name]["active"] = None
            self._write()
            return current

    def list(self) -> list[dict]:
        with self._lock:
            return [{"name": n, "active": e["active"], "versions": list(e["versions"])}
                    for n, e in sorted(self._state["adapters"].items())]

    def loaded(self) -> list[AdapterVersion]:
        return [self.active(e["name"]) for e in self.list() if e["active"] is not None]
