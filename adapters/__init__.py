"""LoRA adapters: sources, validation, registry and training."""
