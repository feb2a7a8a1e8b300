"""Read an OpenAI server-sent-event stream as it arrives: TTFT, inter-token gaps, usage.

Pure (no locust, no network) so that the numbers the load test reports can be
unit-tested. Feed it the bytes of each network read with the time they
arrived; events that arrive in one read share that time, exactly as vLLM's
benchmark client sees them.

>>> reader = StreamReader(started=0.0)
>>> reader.feed(b'data: {"choices": [{"delta": {"content": "Hi"}}]}\\n\\n', at=0.25)
>>> reader.feed(b'data: [DONE]\\n\\n', at=0.30)
>>> reader.result().ttft_s
0.25
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class StreamResult:
    """What one streamed answer measured. Times in seconds."""

    ttft_s: float | None = None          # request sent -> first content token
    gaps_s: list[float] = field(default_factory=list)  # between content-bearing events
    output_tokens: int = 0               # usage.completion_tokens, else content events
    content_events: int = 0
    usage: dict | None = None
    citations: list | None = None        # lorag's `citations` (retrieval routes)
    done: bool = False                   # `data: [DONE]` seen
    error: str | None = None             # an error event, or a stream that ended early
    text: str = ""

    @property
    def mean_gap_s(self) -> float | None:
        return sum(self.gaps_s) / len(self.gaps_s) if self.gaps_s else None


class StreamReader:
    """Incremental SSE parser for OpenAI chat and completion streams."""

    def __init__(self, started: float):
        self.started = started
        self.received_bytes = 0
        self._buffer = b""
        self._last_token_at: float | None = None
        self._result = StreamResult()
        self._parts: list[str] = []

    def feed(self, data: bytes, at: float) -> None:
        """Bytes of one network read and when they arrived (`time.perf_counter()`)."""
        self.received_bytes += len(data)
        self._buffer += data
        *events, self._buffer = self._buffer.replace(b"\r\n", b"\n").split(b"\n\n")
        for event in events:
            self._event(event.decode("utf-8", errors="replace"), at)

    def _event(self, event: str, at: float) -> None:
        lines = [line[5:].lstrip() for line in event.split("\n") if line.startswith("data:")]
        if not lines:
            return  # a comment or keep-alive
        payload = "\n".join(lines)
        res = self._result
        if payload == "[DONE]":
            res.done = True
            return
        try:
            body = json.loads(payload)
        except ValueError:
            res.error = res.error or f"malformed event: {payload[:120]}"
            return
        if not isinstance(body, dict):
            return
        if "error" in body:
            res.error = res.error or f"error event: {json.dumps(body['error'])[:200]}"
            return
        if "citations" in body and res.citations is None:
            res.citations = body["citations"]
        if body.get("usage"):
            res.usage = body["usage"]
        text = "".join(_choice_text(c) for c in body.get("choices") or [])
        if not text:
            return
        res.content_events += 1
        self._parts.append(text)
        if res.ttft_s is None:
            res.ttft_s = at - self.started
        else:
            res.gaps_s.append(at - self._last_token_at)
        self._last_token_at = at

    def result(self) -> StreamResult:
        """The measurements; `error` is set when the stream did not end with [DONE]."""
        res = self._result
        res.text = "".join(self._parts)
        if self._buffer.strip():
            self._event(self._buffer.decode("utf-8", errors="replace"), self._last_token_at or 0)
            self._buffer = b""
        completion = (res.usage or {}).get("completion_tokens")
        res.output_tokens = int(completion) if completion is not None else res.content_events
        if not res.done and res.error is None:
            res.error = "stream ended without data: [DONE]"
        return res


def _choice_text(choice: dict) -> str:
    delta = choice.get("delta")
    if isinstance(delta, dict):  # chat
        return delta.get("content") or ""
    return choice.get("text") or ""  # completions
