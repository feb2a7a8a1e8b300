"""AdapterSlots: reference counting between Ray Serve's LRU cache and running requests."""

import asyncio

import pytest

from serving.errors import InvalidRequestError
from serving.lora import AdapterSlots


class FakeEngine:
    def __init__(self, fail=False):
        self.loaded, self.calls, self.fail = set(), [], fail

    async def add_lora(self, request):
        if self.fail:
            raise RuntimeError("Error loading /secret/path/adapter_model.safetensors")
        self.calls.append(("add", request.lora_int_id))
        self.loaded.add(request.lora_int_id)
        return True

    async def remove_lora(self, lora_id):
        self.calls.append(("remove", lora_id))
        self.loaded.discard(lora_id)
        return True


def record(name="fmt", version="1", lora_int_id=7):
    return {"name": name, "version": version, "served_id": f"{name}@{version}",
            "lora_int_id": lora_int_id, "path": "/data/adapters/store/fmt/abc"}


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def test_load_registers_the_version_under_its_served_id():
    engine, lookups = FakeEngine(), {}
    slots = AdapterSlots(engine, lookups)
    handle = await slots.load(record())
    assert handle.served_id == "fmt@1" and lookups["fmt@1"].lora_int_id == 7
    assert lookups["fmt@1"].lora_name == "fmt@1" and engine.loaded == {7}
    await slots.load(record())  # a second handle shares the engine copy
    assert engine.calls == [("add", 7)]


async def test_eviction_waits_for_running_requests():
    engine, lookups = FakeEngine(), {}
    slots = AdapterSlots(engine, lookups)
    handle = await slots.load(record())
    with handle.use() as engine_name:
        assert engine_name == "fmt@1"
        await asyncio.to_thread(handle.__del__)  # Ray Serve evicts it from a thread
        await settle()
        assert engine.loaded == {7} and "fmt@1" in lookups  # still running on it
    await settle()
    assert engine.loaded == set() and "fmt@1" not in lookups
    handle.__del__()  # the GC calling again changes nothing
    await settle()
    assert engine.calls == [("add", 7), ("remove", 7)]


async def test_reload_after_eviction_keeps_the_engine_copy():
    engine, lookups = FakeEngine(), {}
    slots = AdapterSlots(engine, lookups)
    first = await slots.load(record())
    first.__del__()
    second = await slots.load(record())  # loaded again before the removal ran
    await settle()
    assert engine.loaded == {7} and slots.loaded() == ["fmt@1"]
    second.__del__()
    await settle()
    assert engine.loaded == set()


async def test_engine_errors_become_400_without_paths():
    slots = AdapterSlots(FakeEngine(fail=True), {})
    with pytest.raises(InvalidRequestError) as info:
        await slots.load(record())
    assert info.value.code == "invalid_adapter" and "/secret" not in info.value.message
    assert slots.loaded() == []
