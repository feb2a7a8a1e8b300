"""Fakes for driving the ingress (`serving.api.OpenAIService`) without Ray or an engine."""

import json
from types import SimpleNamespace


class FakeLLM:
    """An LLM deployment handle that records the route prompt and answers "ok"."""

    def __init__(self):
        self.prompts = []
        self.chat = SimpleNamespace(remote=self._chat)

    def options(self, **_):
        return self

    def _chat(self, request, adapter=None, prompt=None):
        self.prompts.append(prompt)

        async def answer():
            yield {"result": {"id": "c", "object": "chat.completion", "model": request.model,
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                "finish_reason": "stop"}]}}
        return answer()


async def chat(svc, **body):
    """POST /v1/chat/completions with `body` (a default user message) to the service."""
    body = {"messages": [{"role": "user", "content": "Where is Ostbridge?"}], **body}

    async def stream():  # what serving.protocol.read_body reads, as Starlette's Request
        yield json.dumps(body).encode()

    raw = SimpleNamespace(headers={}, state=SimpleNamespace(), stream=stream)
    return await svc.chat(raw)
