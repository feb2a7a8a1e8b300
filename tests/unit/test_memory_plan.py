"""The KV cache's size on CPU, from the model's files and the memory free (memory_plan)."""

import json

import pytest

from serving.config import ConfigError, LoragConfig
from serving.engine_args import engine_cli_args, parse_engine_args
from serving.memory_plan import (
    GiB,
    MiB,
    ModelDoesNotFitError,
    available_memory,
    plan_memory,
)
from serving.model_config import ModelConfig

# 16 layers x 4 KV heads x 64 dims x 2 (K and V) x 4 bytes (float32) = 32 KiB a token;
# 64 sequences of 2048 tokens, plus one 256-token block: 4104 MiB; one sequence: 72 MiB.
SHAPE = {"num_hidden_layers": 16, "num_attention_heads": 8, "num_key_value_heads": 4,
         "hidden_size": 512, "torch_dtype": "float32"}
PER_TOKEN = 32 * 1024
DEMAND = 4104 * MiB
MINIMUM = 72 * MiB


@pytest.fixture(autouse=True)
def _no_kv_env(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)


def model_folder(tmp_path, weights: int, shape: dict | None = None, name: str = "m"):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(SHAPE if shape is None else shape))
    with open(folder / "model.safetensors", "wb") as f:
        f.truncate(weights)  # sparse: its size, no disk
    return str(folder)


def model(source: str, **engine) -> ModelConfig:
    return ModelConfig.model_validate({"source": source, "engine": engine})


def test_small_model_gets_its_whole_demand(tmp_path):
    path = model_folder(tmp_path, 1 * GiB)
    plan = plan_memory(model(path), path, on_gpu=False, available=16 * GiB)
    assert plan.per_token_bytes == PER_TOKEN
    assert plan.demand_bytes == DEMAND
    assert plan.kv_cache_bytes == DEMAND  # room: (16 - 1 - 1.5 - 0.2) / 2 = 6.65 GiB
    assert plan.gpu_memory_utilization is None
    assert plan.describe().startswith(
        "KV cache 4.01 GiB on CPU (sized from free memory): weights 1.00 GiB, "
        "16.00 GiB available, reserve 1.70 GiB")


def test_large_weights_get_half_the_room(tmp_path):
    path = model_folder(tmp_path, 8 * GiB)
    plan = plan_memory(model(path), path, on_gpu=False, available=16 * GiB)
    # room = 16 - 8 - (1.5 + 0.2 * 8) = 4.9 GiB; half, in whole MiB
    assert plan.kv_cache_bytes == 2508 * MiB < DEMAND


def test_a_model_that_does_not_fit_says_what_to_change(tmp_path):
    path = model_folder(tmp_path, 14 * GiB)
    with pytest.raises(ModelDoesNotFitError) as err:
        plan_memory(model("builtin:big", max_model_len=2048), path, on_gpu=False,
                    available=16 * GiB)
    msg = str(err.value)
    assert f"model builtin:big ({path}) does not fit" in msg
    assert "weights take 14.00 GiB (float32)" in msg
    assert "engine.max_model_len=2048 tokens needs 72 MiB of KV cache (32 KiB per token)" in msg
    assert "only 16.00 GiB is available" in msg and "nothing is left" in msg
    assert "engine.kv_cache_memory_gib" in msg and "smaller model" in msg
    assert isinstance(err.value, ValueError)


def test_the_minimum_is_one_full_sequence(tmp_path):
    # room = 12 - 8 - 3.1 = 0.9 GiB: half (460 MiB) holds one sequence, not all 64
    path = model_folder(tmp_path, 8 * GiB)
    plan = plan_memory(model(path), path, on_gpu=False, available=12 * GiB)
    assert MINIMUM < plan.kv_cache_bytes < DEMAND
    with pytest.raises(ModelDoesNotFitError, match="max_model_len=32768 tokens needs 1032 MiB"
                       r".* 0\.90 GiB is left, half of which \(0\.45 GiB\)"):
        plan_memory(model(path, max_model_len=32768), path, on_gpu=False, available=12 * GiB)


def test_shape_fallbacks_and_dtypes(tmp_path):
    # no num_key_value_heads nor head_dim: all 8 heads of 512 / 8 = 64; bfloat16 files
    # run as float32 take twice their size in memory
    shape = {"num_hidden_layers": 16, "num_attention_heads": 8, "hidden_size": 512,
             "dtype": "bfloat16"}
    path = model_folder(tmp_path, 1 * GiB, shape)
    plan = plan_memory(model(path), path, on_gpu=False, available=16 * GiB)
    assert plan.per_token_bytes == 2 * PER_TOKEN
    assert plan.weights_bytes == 2 * GiB
    plan = plan_memory(model(path, dtype="bfloat16"), path, on_gpu=False, available=16 * GiB)
    assert plan.per_token_bytes == PER_TOKEN and plan.weights_bytes == 1 * GiB


def test_engine_args_pass_the_kv_bytes_and_no_share(tmp_path):
    path = model_folder(tmp_path, 1 * GiB)
    args = engine_cli_args(model(path), path, ["base"], on_gpu=False, available_memory=16 * GiB)
    assert "--gpu-memory-utilization" not in args
    ns = parse_engine_args(args)
    assert ns.kv_cache_memory_bytes == DEMAND
    assert ns.dtype == "float32" and ns.enforce_eager is True


def test_explicit_kv_cache_size_on_cpu_and_gpu(tmp_path):
    path = model_folder(tmp_path, 14 * GiB)  # would not fit: not checked when explicit
    m = model(path, kv_cache_memory_gib=1.5)
    ns = parse_engine_args(engine_cli_args(m, path, ["base"], on_gpu=False,
                                           available_memory=16 * GiB))
    assert ns.kv_cache_memory_bytes == int(1.5 * GiB)
    ns = parse_engine_args(engine_cli_args(m, path, ["base"], on_gpu=True))
    assert ns.kv_cache_memory_bytes == int(1.5 * GiB)
    assert ns.gpu_memory_utilization == 0.9  # vLLM's start-up check on GPU as before
    with pytest.raises(ValueError):
        model(path, kv_cache_memory_gib=0)


def test_explicit_share_passes_through_and_nothing_is_computed(tmp_path):
    path = model_folder(tmp_path, 14 * GiB)
    ns = parse_engine_args(engine_cli_args(model(path, gpu_memory_utilization=0.5), path,
                                           ["base"], on_gpu=False, available_memory=16 * GiB))
    assert ns.gpu_memory_utilization == 0.5 and ns.kv_cache_memory_bytes is None


def test_gpu_is_unchanged(tmp_path):
    path = model_folder(tmp_path, 14 * GiB)
    ns = parse_engine_args(engine_cli_args(model(path), path, ["base"], on_gpu=True,
                                           available_memory=1 * GiB))
    assert ns.gpu_memory_utilization == 0.9 and ns.kv_cache_memory_bytes is None


def test_extra_args_and_the_legacy_variable_win(tmp_path, monkeypatch):
    path = model_folder(tmp_path, 14 * GiB)
    args = engine_cli_args(model(path, extra_args={"kv-cache-memory-bytes": 123 * MiB}), path,
                           ["base"], on_gpu=False, available_memory=16 * GiB)
    assert args.count("--kv-cache-memory-bytes") == 1
    assert parse_engine_args(args).kv_cache_memory_bytes == 123 * MiB
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")  # vLLM would use it anyway
    ns = parse_engine_args(engine_cli_args(model(path), path, ["base"], on_gpu=False,
                                           available_memory=16 * GiB))
    assert ns.kv_cache_memory_bytes == 2 * GiB


def test_no_config_json_falls_back_to_the_fixed_share(tmp_path, caplog):
    ns = parse_engine_args(engine_cli_args(model("org/not-here"), "org/not-here", ["base"],
                                           on_gpu=False, available_memory=16 * GiB))
    assert ns.gpu_memory_utilization == 0.3 and ns.kv_cache_memory_bytes is None
    assert "cannot size the KV cache of org/not-here" in caplog.text


def test_available_memory_honours_a_cgroup_v2_limit(tmp_path, monkeypatch):
    import psutil

    class VM:
        available = 20 * GiB

    monkeypatch.setattr(psutil, "virtual_memory", lambda: VM)
    (tmp_path / "memory.max").write_text(f"{8 * GiB}\n")
    (tmp_path / "memory.current").write_text(f"{3 * GiB}\n")
    (tmp_path / "memory.stat").write_text(f"anon 1\ninactive_file {1 * GiB}\nfile 5\n")
    assert available_memory(tmp_path) == 6 * GiB  # 8 - (3 - 1 reclaimable)
    (tmp_path / "memory.max").write_text("max\n")
    assert available_memory(tmp_path) == 20 * GiB
    assert available_memory(tmp_path / "none") == 20 * GiB


def test_prepare_model_fails_on_a_model_that_does_not_fit(tmp_path, monkeypatch, capsys):
    import serving.engine_args
    import serving.memory_plan
    from serving.cli import prepare_models

    path = model_folder(tmp_path, 14 * GiB)
    monkeypatch.setattr(serving.engine_args, "has_cuda_device", lambda: False)
    monkeypatch.setattr(serving.memory_plan, "available_memory", lambda: 16 * GiB)
    config = LoragConfig.model_validate({
        "models": {"big": {"source": path}},
        "routes": [{"name": "base", "model": "big"}]})
    with pytest.raises(ConfigError, match=r"models\.big: model .* does not fit .* 14\.00 GiB"):
        prepare_models(config)
