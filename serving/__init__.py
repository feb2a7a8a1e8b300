"""HTTP and Ray Serve: the OpenAI-compatible ingress, LLM deployments, app builder."""

from serving.config import ConfigError, LoragConfig, load_config

__all__ = ["ConfigError", "LoragConfig", "load_config", "build_app"]


def __getattr__(name: str):
    # build_app pulls in Ray; keep `import serving` cheap for the CLI and unit tests.
    if name == "build_app":
        from serving.app import build_app

        return build_app
    raise AttributeError(name)
