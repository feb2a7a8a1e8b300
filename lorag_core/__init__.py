"""The bottom layer, shared by every other package: model sources, the strict config
base, free ports, the default data directory and the base of the domain errors. It
imports no other lorag package (docs/architecture.md)."""

__all__: list[str] = []  # a namespace: import the modules
