"""What the Ray Serve tests put in place of `serving.llm_server.LLMServer` (no engine).

`LLMDeployment` builds its server from the class it is given (`llm_server_cls`); a fake
defines `chat` and keeps the rest of this interface.
"""

from __future__ import annotations


class FakeLLMServerBase:
    def __init__(self, model_key, config, served_names):
        self.model_key = model_key
        self.served_names = served_names
        self.adapters = None

    async def start(self):
        pass

    async def check_health(self):
        pass

    def close(self):
        pass

    def metrics_text(self):
        return ""

    async def chat(self, request, prompt=None):
        raise NotImplementedError
        yield  # an async generator, as LLMServer.chat is


def start_local_ray(**kwargs) -> None:
    """`ray.init` of a fresh local cluster in the test process. The third cluster one
    pytest process starts after shutting two down once failed CI's node start-up check
    (the raylet did not register with the new GCS within Ray's fixed 30 s while gRPC
    threads of the previous cluster were still winding down); start once more then."""
    import time

    import ray

    try:
        ray.init(**kwargs)
    except Exception as err:  # Ray raises a bare Exception for this
        if "timed out during startup" not in str(err):
            raise
        ray.shutdown()
        time.sleep(5)
        ray.init(**kwargs)
