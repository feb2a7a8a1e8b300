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
