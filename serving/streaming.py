"""Server-sent events: the one place lorag reads, writes and rewrites OpenAI's SSE
streams, and the coalescing of an LLM replica's chunks.

A chunk is SSE text of one or several events (``data: {json}\n\n``), ending with
``data: [DONE]``. `rewrite_events` edits the JSON events of a chunk (the citations of the
first event, the checks of a finishing chunk, the usage event), `event` writes one, and
`with_model_name` renames a whole answer or a chunk.

Coalescing: every chunk an LLM replica yields crosses two Ray hops (replica -> ingress ->
proxy). On a GPU a stream makes a token every few milliseconds; joining the
chunks that arrive within `interval_s` into one message cuts that traffic
without changing the bytes the client sees (SSE events are self-delimiting).
The first chunk is never delayed (time to first token), and a stream slower
than the interval is passed through as it comes (no added latency on CPU).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["DONE", "DROP", "event", "rewrite_events", "with_model_name", "coalesce"]

DONE = "data: [DONE]\n\n"
DROP = object()  # returned by a `rewrite_events` edit: leave the event out
_DONE = object()


def event(body: dict[str, Any]) -> str:
    """One SSE data event."""
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def rewrite_events(sse: str, edit: Callable[[dict[str, Any]], Any],
                   needles: tuple[str, ...] = ()) -> str:
    """`sse` with `edit` applied to each of its JSON data events: `edit` changes the event
    in place and returns True (the event is written again), False (its text is kept as
    it came) or `DROP` (it is left out). With `needles`, only events whose text holds one
    of them are parsed: in JSON text a key such as ``"usage":`` cannot occur inside a
    string (its quotes would be escaped), so a substring test is exact and cheap."""
    if needles and not any(n in sse for n in needles):
        return sse
    out, changed = [], False
    for text in sse.split("\n\n"):
        payload = text.strip()
        if (not payload.startswith("data:") or payload == "data: [DONE]"
                or (needles and not any(n in payload for n in needles))):
            out.append(text)
            continue
        try:
            body = json.loads(payload[5:])
        except ValueError:
            out.append(text)
            continue
        result = edit(body) if isinstance(body, dict) else False
        if result is DROP:
            changed = True
        elif result:
            out.append(f"data: {json.dumps(body, ensure_ascii=False)}")
            changed = True
        else:
            out.append(text)
    return "\n\n".join(out) if changed else sse


_MODEL_FIELD_RE = re.compile(r'"model":\s*"(?:[^"\\]|\\.)*"')


def with_model_name(item: dict[str, Any] | str, name: str) -> dict[str, Any] | str:
    """An LLM replica's item answering as `name`: a whole answer's reply
    (`serving.envelope`) or SSE text. In JSON text a ``"model":`` key cannot occur inside
    a string value (its quotes would be escaped), so every match is an event's `model`
    field, and no event is parsed."""
    if isinstance(item, dict):
        if "result" in item:
            return {"result": {**item["result"], "model": name}}
        return item
    return _MODEL_FIELD_RE.sub(lambda _: f'"model":{json.dumps(name)}', item)


async def coalesce(source: AsyncIterator[str], interval_s: float) -> AsyncIterator[str]:
    """Yield at most one joined string per `interval_s`, the first one at once."""
    if interval_s <= 0:
        async for item in source:
            yield item
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in source:
                queue.put_nowait(item)
            queue.put_nowait(_DONE)
        except Exception as err:  # surfaced to the consumer in order
            queue.put_nowait(err)

    loop = asyncio.get_running_loop()
    task = asyncio.create_task(pump())
    last = float("-inf")
    try:
        while True:
            first = await queue.get()
            wait = last + interval_s - loop.time()
            if wait > 0 and first is not _DONE and not isinstance(first, Exception):
                await asyncio.sleep(wait)
            batch = [first]
            while not queue.empty():
                batch.append(queue.get_nowait())
            parts, end = [], None
            for item in batch:
                if item is _DONE or isinstance(item, Exception):
                    end = item
                    break
                parts.append(item)
            if parts:
                yield "".join(parts)
                last = loop.time()
            if isinstance(end, Exception):
                raise end
            if end is _DONE:
                return
    finally:
        task.cancel()
