"""LoRA adapters inside one LLM replica: load into vLLM, count users, unload safely.

Ray Serve model multiplexing decides *which* adapters a replica keeps (LRU,
bounded by the engine's `max_cpu_loras`) and routes requests for an adapter to
replicas that have it. This module is what it loads and evicts:

- `AdapterSlots.load(record)` adds the version to the engine under its
  registry-wide `lora_int_id` and its served id `name@version` (vLLM keys a
  batch's adapters and its prefix cache by name and path, so every version gets
  its own name, path and id and no cache can hand out a replaced version's
  weights), and returns a fresh `AdapterHandle` for Ray Serve's cache.
- Ray Serve calls the handle's `__del__` when it evicts it. Requests that are
  still running on that version keep it: the engine copy is removed only when
  no handle holds it and no request uses it.

All state is touched on the replica's event loop only; eviction arrives from a
Ray executor thread and is handed over with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from serving.errors import InvalidRequestError, sanitize

__all__ = ["AdapterHandle", "AdapterSlots"]

logger = logging.getLogger(__name__)


@dataclass
class _Entry:
    lora_request: Any
    handles: int = 0
    in_flight: int = 0


class AdapterHandle:
    """What Ray Serve's multiplexing cache holds for one loaded version."""

    def __init__(self, slots: AdapterSlots, served_id: str):
        self.slots, self.served_id = slots, served_id
        self._released = False

    @contextmanager
    def use(self) -> Iterator[str]:
        """Mark one request as running on this version; yields the engine-side model name."""
        with self.slots.using(self.served_id):
            yield self.served_id

    def __del__(self) -> None:
        # Ray Serve calls this on LRU eviction (from a thread); the GC may call it again.
        if not self._released:
            self._released = True
            self.slots.release_threadsafe(self.served_id)


class AdapterSlots:
    """Adapters loaded in one vLLM engine, with reference counts.

    `engine` needs `add_lora(LoRARequest)` and `remove_lora(int)`; `lora_requests`
    is vLLM's `OpenAIServingModels.lora_requests`, where the serving layer looks
    up a request's `model`.
    """

    def __init__(self, engine: Any, lora_requests: dict[str, Any]):
        self.engine = engine
        self.lora_requests = lora_requests
        self.entries: dict[str, _Entry] = {}
        self.loop = asyncio.get_running_loop()
        self._engine_lock = asyncio.Lock()  # adds and removes reach the engine in order

    async def load(self, record: dict[str, Any]) -> AdapterHandle:
        from vllm.lora.request import LoRARequest

        served_id = record["served_id"]
        entry = self.entries.get(served_id)
        if entry is None:
            request = LoRARequest(lora_name=served_id, lora_int_id=int(record["lora_int_id"]),
                                  lora_path=record["path"])
            try:
                async with self._engine_lock:
                    await self.engine.add_lora(request)
            except Exception as err:  # vLLM raises plain errors for unloadable weights
                logger.warning("engine could not load adapter %s: %s", served_id, err)
                raise InvalidRequestError(
                    f"the engine could not load adapter {record['name']!r} version "
                    f"{record['version']!r}: {sanitize(str(err))[:300] or type(err).__name__}",
                    param="source",
                    code="invalid_adapter") from None
            entry = self.entries.setdefault(served_id, _Entry(request))
            self.lora_requests[served_id] = request
            logger.info("loaded adapter %s (lora_int_id %s)", served_id, request.lora_int_id)
        entry.handles += 1
        return AdapterHandle(self, served_id)

    @contextmanager
    def using(self, served_id: str) -> Iterator[None]:
        entry = self.entries[served_id]
        entry.in_flight += 1
        try:
            yield
        finally:
            entry.in_flight -= 1
            self._maybe_remove(served_id)

    def release_threadsafe(self, served_id: str) -> None:
        try:
            self.loop.call_soon_threadsafe(self._release, served_id)
        except RuntimeError:  # loop closed: the engine is gone with it
            pass

    def _release(self, served_id: str) -> None:
        entry = self.entries.get(served_id)
        if entry is not None:
            entry.handles -= 1
            self._maybe_remove(served_id)

    def _maybe_remove(self, served_id: str) -> None:
        entry = self.entries.get(served_id)
        if entry is None or entry.handles > 0 or entry.in_flight > 0:
            return
        del self.entries[served_id]
        self.lora_requests.pop(served_id, None)
        self.loop.create_task(self._remove(served_id, entry.lora_request))

    async def _remove(self, served_id: str, request: Any) -> None:
        try:
            async with self._engine_lock:
                if served_id in self.entries:  # loaded again meanwhile: keep it
                    return
                await self.engine.remove_lora(request.lora_int_id)
            logger.info("unloaded adapter %s", request.lora_name)
        except Exception:
            logger.exception("could not unload adapter %s", request.lora_name)

    def loaded(self) -> list[str]:
        return sorted(self.entries)
