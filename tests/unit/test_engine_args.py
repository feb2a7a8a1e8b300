"""Engine arguments: one list for lorag and vLLM's own server, parsed by vLLM."""

from serving.config import load_config
from serving.engine_args import engine_cli_args, parse_engine_args


def model():
    return load_config().models["smollm2"]


def test_cpu_defaults_are_float32_and_eager(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    # No model folder at /m: the KV cache falls back to vLLM's share of RAM (0.3);
    # sizing it from the folder is tests/unit/test_memory_plan.py.
    args = engine_cli_args(model(), "/m", ["base", "other"], on_gpu=False)
    assert args[:5] == ["--model", "/m", "--served-model-name", "base", "other"]
    ns = parse_engine_args(args)
    assert ns.dtype == "float32"
    assert ns.gpu_memory_utilization == 0.3
    assert ns.served_model_name == ["base", "other"]
    assert ns.enable_lora is True and ns.max_lora_rank == 16 and ns.max_loras == 4
    assert ns.enforce_eager is True and ns.max_model_len == 2048


def test_gpu_defaults_keep_model_dtype():
    ns = parse_engine_args(engine_cli_args(model(), "/m", ["base"], on_gpu=True))
    assert ns.dtype == "auto"
    assert ns.gpu_memory_utilization == 0.9
    assert ns.enforce_eager is False  # CUDA graphs on GPU unless the config says otherwise


def test_extra_args_pass_through():
    m = model().model_copy(update={"engine": model().engine.model_copy(
        update={"extra_args": {"block-size": 32, "enable_prefix_caching": False}})})
    ns = parse_engine_args(engine_cli_args(m, "/m", ["base"], on_gpu=False))
    assert ns.block_size == 32
    assert ns.enable_prefix_caching is False


def test_json_under_response_format_is_compact_by_default():
    from serving.config import EngineConfig, ModelConfig

    ns = parse_engine_args(engine_cli_args(ModelConfig(source="/m"), "/m", ["base"],
                                           on_gpu=True))
    cfg = ns.structured_outputs_config
    cfg = cfg if isinstance(cfg, dict) else vars(cfg)
    assert cfg["backend"] == "guidance" and cfg["disable_any_whitespace"] is True
    off = ModelConfig(source="/m", engine=EngineConfig(compact_json=False))
    assert "--structured-outputs-config" not in engine_cli_args(off, "/m", ["b"], on_gpu=True)
