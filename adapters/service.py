"""The adapter registry as a service: what the single `Adapters` deployment replica holds.

It owns the only writer of `registry.json`, so registrations from several
ingress replicas never race. Blocking work (downloads, hashing, fsync) runs in
a thread so the replica keeps answering `resolve` while an adapter is fetched.
What it needs from the server's config comes as `AdapterSettings`.

Example::

    service = AdapterService(settings)
    await service.start()                       # registers settings.preload
    await service.register("fmt", "/adapters/fmt")
    await service.resolve("fmt")                # -> record with served_id, path, lora_int_id
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adapters.errors import InvalidInputError
from adapters.registry import AdapterRegistry, AdapterVersion
from adapters.sources import SourceResolver
from adapters.validation import AdapterLimits
from lorag_core.data_dir import default_data_dir

__all__ = ["PUBLIC_FIELDS", "BaseModelInfo", "AdapterSettings", "pick_base_model", "record",
           "AdapterService"]

# Fields of a version that clients see; the store path stays internal.
PUBLIC_FIELDS = ("version", "content_hash", "source", "base_model", "rank", "size_bytes",
                 "created_at")


@dataclass(frozen=True)
class BaseModelInfo:
    """What adapters need to know of one served model."""

    source: str          # what an adapter must have been trained on (adapters.validation)
    max_lora_rank: int
    enable_lora: bool


@dataclass(frozen=True)
class AdapterSettings:
    """The service's settings, taken from the server's config by the server."""

    models: Mapping[str, BaseModelInfo]      # model key -> the model
    data_dir: str | Path | None              # None: lorag_core.data_dir.default_data_dir()
    local_roots: tuple[str, ...]             # folders local sources must lie in
    storage_options: Mapping[str, dict[str, Any]]  # fsspec options per scheme
    allowed_schemes: tuple[str, ...]
    max_adapter_bytes: int
    preload: Mapping[str, tuple[str, str | None]]  # registered at start: name -> (source, base)
    reserved_names: frozenset[str]           # ids clients already use as `model`


def pick_base_model(base_model: str | None, lora_enabled: Mapping[str, bool]) -> str:
    """The key of the model an adapter runs on: `base_model`, or the only model when it
    is None; ValueError when that is not a model that serves adapters."""
    if base_model is None:
        if len(lora_enabled) != 1:
            raise ValueError("required when several models are served")
        base_model = next(iter(lora_enabled))
    if base_model not in lora_enabled:
        raise ValueError(f"unknown model {base_model!r}")
    if not lora_enabled[base_model]:
        raise ValueError(f"model {base_model!r} has engine.enable_lora false")
    return base_model


def record(version: AdapterVersion) -> dict[str, Any]:
    """What an LLM replica needs to load a version (crosses the Ray boundary)."""
    return {**asdict(version), "served_id": version.served_id}


class AdapterService:
    def __init__(self, settings: AdapterSettings):
        self.settings = settings
        data_dir = settings.data_dir
        self.registry = AdapterRegistry(
            Path(data_dir) if data_dir else default_data_dir(),
            SourceResolver([Path(r) for r in settings.local_roots],
                           dict(settings.storage_options), list(settings.allowed_schemes)))

    async def start(self) -> None:
        for name, (source, base_model) in self.settings.preload.items():
            await self.register(name, source, base_model=base_model)

    def limits(self, base_model: str) -> AdapterLimits:
        model = self.settings.models[base_model]
        return AdapterLimits(base_models={model.source}, max_lora_rank=model.max_lora_rank,
                             max_size_bytes=self.settings.max_adapter_bytes)

    def _base(self, base_model: str | None) -> str:
        try:
            return pick_base_model(base_model, {key: m.enable_lora for key, m
                                                in self.settings.models.items()})
        except ValueError as err:
            raise InvalidInputError(str(err), param="base_model", code="invalid_value") from None

    async def register(self, name: str, source: str, *, version: str | None = None,
                       base_model: str | None = None, activate: bool = True) -> dict[str, Any]:
        if name in self.settings.reserved_names:
            raise InvalidInputError(f"{name!r} is already a route or model id; pick another "
                                    "adapter name.", param="name", code="name_conflict")
        base = self._base(base_model)
        version_ = await asyncio.to_thread(
            self.registry.register, name, source, base_model=base, limits=self.limits(base),
            version=version, activate=activate)
        return record(version_)

    async def activate(self, name: str, version: str) -> dict[str, Any]:
        return record(await asyncio.to_thread(self.registry.activate, name, version))

    async def discard(self, name: str, version: str) -> None:
        await asyncio.to_thread(self.registry.discard, name, version)

    async def unregister(self, name: str) -> dict[str, Any]:
        return record(await asyncio.to_thread(self.registry.unregister, name))

    async def resolve(self, name: str) -> dict[str, Any] | None:
        """The active version of `name`, or None when no such adapter is loaded."""
        entry = self.registry.active_or_none(name)
        return record(entry) if entry is not None else None

    async def describe(self, name: str | None = None) -> list[dict[str, Any]]:
        """Adapters with their state (all of them, or the one named)."""
        out = []
        for entry in self.registry.list():
            if name is not None and entry["name"] != name:
                continue
            versions = [{**{k: v[k] for k in PUBLIC_FIELDS},
                         "state": "active" if v["version"] == entry["active"] else "retired"}
                        for v in entry["versions"]]
            active = next((v for v in versions if v["state"] == "active"), None)
            out.append({
                "id": entry["name"], "object": "adapter",
                "state": "loaded" if active else "unloaded",
                "active_version": entry["active"],
                "base_model": (active or versions[-1])["base_model"],
                "versions": versions,
            })
        return out
