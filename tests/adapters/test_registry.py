"""Adapter sources, validation and the versioned registry (no engine needed)."""

import json
from pathlib import Path

import pytest

from adapters.errors import AdapterNotFoundError, InvalidInputError, SourceUnavailableError
from adapters.registry import AdapterRegistry
from adapters.sources import SourceResolver
from adapters.validation import AdapterLimits, normalize_model_name, validate_adapter
from serving.errors import from_domain_error

LIMITS = AdapterLimits(base_models={"builtin:smollm2-135m-instruct",
                                    "HuggingFaceTB/SmolLM2-135M-Instruct"}, max_lora_rank=16)


def make_adapter(path, *, r=8, base="HuggingFaceTB/SmolLM2-135M-Instruct",
                 targets=("q_proj", "v_proj"), peft_type="LORA", weights=b"w" * 64):
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_config.json").write_text(json.dumps({
        "peft_type": peft_type, "r": r, "lora_alpha": 16, "target_modules": list(targets),
        "base_model_name_or_path": base}))
    if weights is not None:
        (path / "adapter_model.safetensors").write_bytes(weights)
    return path


def test_valid_adapter(tmp_path):
    info = validate_adapter(make_adapter(tmp_path / "a"), LIMITS)
    assert info.rank == 8 and info.target_modules == ("q_proj", "v_proj")
    assert len(info.content_hash) == 64


@pytest.mark.parametrize("kwargs, code", [
    ({"r": 64}, "rank_too_large"),
    ({"base": "meta-llama/Llama-3-8B"}, "base_model_mismatch"),
    ({"peft_type": "IA3"}, "unsupported_adapter"),
    ({"targets": ("q_proj", "mlp.weird")}, "unsupported_target_modules"),
    ({"weights": None}, "invalid_adapter"),
])
def test_invalid_adapters_are_400_with_a_reason(tmp_path, kwargs, code):
    with pytest.raises(InvalidInputError) as info:
        validate_adapter(make_adapter(tmp_path / "a", **kwargs), LIMITS)
    assert info.value.code == code and info.value.param == "source"


def test_missing_or_malformed_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="adapter_config.json is missing"):
        validate_adapter(tmp_path / "empty", LIMITS)
    bad = make_adapter(tmp_path / "bad")
    (bad / "adapter_config.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        validate_adapter(bad, LIMITS)


def test_model_names_normalize():
    assert normalize_model_name("/root/.cache/lorag/models/smollm2-135m-instruct/") == \
        normalize_model_name("HuggingFaceTB/SmolLM2-135M-Instruct")


@pytest.fixture
def registry(tmp_path):
    roots = [tmp_path / "allowed"]
    return AdapterRegistry(tmp_path / "data", SourceResolver(
        roots, allowed_schemes=["file", "hf", "s3", "memory"]))


def reg(registry, name, source, **kw):
    return registry.register(name, source, base_model="smol", limits=LIMITS, **kw)


def test_register_versions_and_idempotence(registry, tmp_path):
    src = make_adapter(tmp_path / "allowed" / "fmt")
    v1 = reg(registry, "fmt", str(src))
    assert v1.version == "1" and registry.active("fmt") == v1
    assert reg(registry, "fmt", str(src)) == v1  # same content: no new version
    make_adapter(src, weights=b"new weights" * 10)
    v2 = reg(registry, "fmt", f"file://{src}")
    assert v2.version == "2" and v2.lora_int_id > v1.lora_int_id
    assert v2.served_id == "fmt@2" and registry.active("fmt") == v2
    make_adapter(src, weights=b"edited after registering")  # frozen copies are unaffected
    assert (tmp_path / "data").exists() and validate_adapter(
        type(src)(v2.path), LIMITS).content_hash == v2.content_hash


def test_registry_persists(registry, tmp_path):
    reg(registry, "fmt", str(make_adapter(tmp_path / "allowed" / "fmt")))
    again = AdapterRegistry(tmp_path / "data", SourceResolver([tmp_path / "allowed"]))
    assert again.active("fmt").version == "1"
    again.unregister("fmt")
    with pytest.raises(AdapterNotFoundError):
        AdapterRegistry(tmp_path / "data", SourceResolver([])).active("fmt")


def test_bad_sources(registry, tmp_path):
    make_adapter(tmp_path / "outside")
    with pytest.raises(InvalidInputError) as info:
        reg(registry, "x", str(tmp_path / "allowed" / ".." / "outside"))
    assert info.value.code == "path_not_allowed"
    with pytest.raises(InvalidInputError) as info:
        reg(registry, "x", "../../etc")
    assert info.value.code == "path_not_allowed"
    with pytest.raises(InvalidInputError) as info:
        reg(registry, "x", "ftp://host/adapter")
    assert info.value.code == "unsupported_source"
    with pytest.raises(InvalidInputError) as info:
        reg(registry, "bad name!", str(tmp_path / "allowed"))
    assert info.value.param == "name"
    assert registry.list() == []


def test_object_store_source_through_fsspec(registry, tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    local = make_adapter(tmp_path / "staging")
    for f in local.iterdir():
        fs.pipe(f"/bucket/fmt/{f.name}", f.read_bytes())
    version = reg(registry, "fmt", "memory://bucket/fmt")
    assert version.rank == 8


def test_inactive_registration_then_activate_or_discard(registry, tmp_path):
    src = make_adapter(tmp_path / "allowed" / "fmt")
    v1 = reg(registry, "fmt", str(src))
    make_adapter(src, weights=b"v2 weights" * 10)
    v2 = reg(registry, "fmt", str(src), activate=False)
    assert registry.active("fmt") == v1  # not visible until activated
    registry.discard("fmt", v2.version)
    assert [v["version"] for v in registry.list()[0]["versions"]] == ["1"]
    assert not Path(v2.path).exists() and Path(v1.path).exists()
    v3 = reg(registry, "fmt", str(src), activate=False)
    assert v3.lora_int_id > v2.lora_int_id  # engine ids are never reused
    assert registry.activate("fmt", v3.version) == registry.active("fmt") == v3


def test_hub_source_without_a_hub_is_a_clear_503(registry, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceUnavailableError, match="Hugging Face hub") as info:
        reg(registry, "hub", "hf://org/some-adapter")
    assert from_domain_error(info.value).status == 503
    with pytest.raises(InvalidInputError, match="hf://org/name"):
        reg(registry, "hub", "hf://not-a-repo-id")


async def test_the_service_takes_what_it_needs_from_the_config(tmp_path):
    from dataclasses import replace

    from adapters.service import AdapterService
    from serving.config import load_config

    cfg = load_config(None)
    settings = cfg.adapter_settings()
    assert set(settings.models) == set(cfg.models)
    assert set(settings.preload) == set(cfg.adapters)
    assert "rag" in settings.reserved_names
    service = AdapterService(replace(settings, data_dir=str(tmp_path), preload={}))
    with pytest.raises(InvalidInputError) as info:
        await service.register("rag", "/nowhere")
    assert (info.value.param, info.value.code) == ("name", "name_conflict")
    with pytest.raises(InvalidInputError) as info:
        await service.register("fresh", "/nowhere", base_model="nope")
    assert (info.value.message, info.value.param, info.value.code) == (
        "unknown model 'nope'", "base_model", "invalid_value")
