"""Coalesce a stream of SSE chunks so fast token streams cost fewer Ray messages.

Every chunk an LLM replica yields crosses two Ray hops (replica -> ingress ->
proxy). On a GPU a stream makes a token every few milliseconds; joining the
chunks that arrive within `interval_s` into one message cuts that traffic
without changing the bytes the client sees (SSE events are self-delimiting).
The first chunk is never delayed (time to first token), and a stream slower
than the interval is passed through as it comes (no added latency on CPU).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

_DONE = object()


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
