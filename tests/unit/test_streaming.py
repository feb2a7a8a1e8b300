"""Stream coalescing: same bytes, first chunk at once, fewer messages for fast streams."""

import asyncio
import time

import pytest

from serving.streaming import coalesce


async def source(n, gap_s, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise RuntimeError("engine died")
        yield f"data: {i}\n\n"
        await asyncio.sleep(gap_s)


async def collect(gen):
    return [x async for x in gen]


async def test_same_bytes_fewer_messages_for_fast_streams():
    out = await collect(coalesce(source(50, 0.001), 0.02))
    assert "".join(out) == "".join(f"data: {i}\n\n" for i in range(50))
    assert out[0] == "data: 0\n\n"  # the first chunk alone, not held back
    assert len(out) < 25


async def test_slow_streams_pass_through_unchanged():
    out = await collect(coalesce(source(5, 0.03), 0.01))
    assert out == [f"data: {i}\n\n" for i in range(5)]


async def test_first_chunk_is_not_delayed():
    start = time.perf_counter()
    gen = coalesce(source(3, 0.2), 0.5)
    assert await anext(gen) == "data: 0\n\n"
    assert time.perf_counter() - start < 0.1
    await gen.aclose()


async def test_errors_propagate_after_earlier_chunks():
    gen = coalesce(source(5, 0.0, fail_at=3), 0.01)
    got = []
    with pytest.raises(RuntimeError, match="engine died"):
        async for x in gen:
            got.append(x)
    assert "".join(got) == "data: 0\n\ndata: 1\n\ndata: 2\n\n"


async def test_zero_interval_is_passthrough():
    assert await collect(coalesce(source(3, 0), 0)) == [f"data: {i}\n\n" for i in range(3)]


def test_answers_carry_the_route_name_not_the_engines():
    from serving.streaming import with_model_name

    one = 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"base",' \
          '"choices":[{"delta":{"content":"say \\"model\\":\\"base\\""}}]}\n\n'
    two = one + one.replace('"c"', '"d"')  # coalesced events
    out = with_model_name(two, "rag")
    assert out.count('"model":"rag"') == 2 and out.count('\\"model\\":\\"base\\"') == 2
    assert with_model_name({"result": {"model": "base", "choices": []}}, "rag")[
        "result"]["model"] == "rag"
    assert with_model_name({"error": {"message": "x"}}, "rag") == {"error": {"message": "x"}}
    assert with_model_name("data: [DONE]\n\n", "rag") == "data: [DONE]\n\n"
