"""LoRA adapters: sources, validation, registry and training."""

__all__: list[str] = []  # a namespace: import the modules
