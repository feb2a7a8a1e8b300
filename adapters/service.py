"""The adapter registry as a service: what the single `Adapters` deployment replica holds.

It owns the only writer of `registry.json`, so registrations from several
ingress replicas never race. Blocking work (downloads, hashing, fsync) runs in
a thread so the replica keeps answering `resolve` while an adapter is fetched.

Example::

    service = AdapterService(config)
    await service.start()                       # registers config.adapters
    await service.register("fmt", "/adapters/fmt")
    await service.resolve("fmt")                # -> record with served_id, path, lora_int_id
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adapters.registry import AdapterRegistry, AdapterVersion
from adapters.sources import SourceResolver
from adapters.validation import AdapterLimits
from retrieval.service import default_data_dir
from serving.config import LoragConfig
from serving.errors import InvalidRequestError

# Fields of a version that clients see; the store path stays internal.
PUBLIC_FIELDS = ("version", "content_hash", "source", "base_model", "rank", "size_bytes",
                 "created_at")


def record(version: AdapterVersion) -> dict[str, Any]:
    """What an LLM replica needs to load a version (crosses the Ray boundary)."""
    return {**asdict(version), "served_id": version.served_id}


class AdapterService:
    def __init__(self, config: LoragConfig):
        self.config = config
        store = config.adapter_store
        data_dir = store.data_dir or config.retrieval.data_dir
        self.registry = AdapterRegistry(
            Path(data_dir) if data_dir else default_data_dir(),
            SourceResolver([Path(r) for r in store.local_roots], store.storage_options,
                           list(store.allowed_schemes)))

    async def start(self) -> None:
        for name, spec in self.config.adapters.items():
            await self.register(name, spec.source, base_model=spec.base_model)

    def limits(self, base_model: str) -> AdapterLimits:
        model = self.config.models[base_model]
        return AdapterLimits(base_models={model.source}, max_lora_rank=model.engine.max_lora_rank,
                             max_size_bytes=self.config.adapter_store.max_adapter_bytes)

    def _base(self, base_model: str | None) -> str:
        try:
            return self.config.adapter_base("request", base_model)
        except ValueError as err:
            raise InvalidRequestError(str(err).split(": ", 1)[-1], param="base_model",
                                      code="invalid_value") from None

    async def register(self, name: str, source: str, *, version: str | None = None,
                       base_model: str | None = None, activate: bool = True) -> dict[str, Any]:
        if name in self.config.reserved_names():
            raise InvalidRequestError(f"{name!r} is already a route or model id; pick another "
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
