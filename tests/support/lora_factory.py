"""Real PEFT LoRA folders on the default model, made in seconds (no training).

`random` adapters (both A and B drawn at random) change the model's output
visibly; `zero` adapters (PEFT's default init, B = 0) leave it exactly as the
base model's - together they show which weights answered a request.
"""

from __future__ import annotations

import json
from pathlib import Path

BASE = "builtin:smollm2-135m-instruct"


def make_lora(out: Path, *, seed: int = 0, zero: bool = False, rank: int = 8,
              targets: tuple[str, ...] = ("q_proj", "v_proj")) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from lorag_core.model_source import public_model_name, resolve_model_source

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(resolve_model_source(BASE),
                                                 dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets),
                        init_lora_weights=zero,
                        task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    if not zero:  # PEFT's random init is small; scale it so the output surely changes
        with torch.no_grad():
            for name, p in peft_model.named_parameters():
                if "lora_" in name:
                    p.mul_(4.0)
    peft_model.save_pretrained(out)
    cfg_path = Path(out) / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = public_model_name(BASE)
    cfg_path.write_text(json.dumps(cfg, indent=2))
    (Path(out) / "README.md").unlink(missing_ok=True)
    return Path(out)
