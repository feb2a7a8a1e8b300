"""The bottom layer, shared by every other package: model sources, the strict config
base and free ports. It imports no other lorag package (docs/architecture.md)."""
