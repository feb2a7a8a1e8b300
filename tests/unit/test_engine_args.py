"""Engine arguments: one list for lorag and vLLM's own server, parsed by vLLM."""

from serving.config import load_config
from serving.engine_args import engine_cli_args, parse_engine_args


def model():
    return load_config().models["smollm2"]


def test_cpu_defaults_are_float32_and_small_kv_cache():
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
