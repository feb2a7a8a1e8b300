"""The real server through the official openai client: chat, completions, streaming."""

import json

import pytest

pytestmark = pytest.mark.e2e

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def test_chat_answers_paris(client):
    r = client.chat.completions.create(model="base", messages=FRANCE, temperature=0,
                                       max_tokens=24)
    assert "Paris" in r.choices[0].message.content
    assert r.model == "base" and r.object == "chat.completion"
    assert r.choices[0].finish_reason in ("stop", "length")
    u = r.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_chat_stream_with_usage(client):
    stream = client.chat.completions.create(
        model="base", messages=FRANCE, temperature=0, max_tokens=24, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_without_usage_has_none(client):
    chunks = list(client.chat.completions.create(
        model="base", messages=FRANCE, max_tokens=4, stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_raw_sse_framing(http):
    body = {"model": "base", "messages": FRANCE, "max_tokens": 4, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = [e for e in raw.split("\n\n") if e.strip()]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    for e in events[:-1]:
        assert json.loads(e[len("data: "):])["object"] == "chat.completion.chunk"


def test_n_returns_n_choices(client):
    r = client.chat.completions.create(model="base", messages=FRANCE, n=3, max_tokens=8,
                                       temperature=1.0, seed=1)
    assert sorted(c.index for c in r.choices) == [0, 1, 2]


def test_stop_sequence_cuts_output(client):
    free = client.chat.completions.create(model="base", messages=FRANCE, temperature=0,
                                          max_tokens=24)
    text = free.choices[0].message.content
    cut_at = text.index("Paris")
    r = client.chat.completions.create(model="base", messages=FRANCE, temperature=0,
                                       max_tokens=24, stop=["Paris"])
    assert r.choices[0].message.content == text[:cut_at]
    assert r.choices[0].finish_reason == "stop"


def test_seed_makes_sampling_reproducible(client):
    def sample(seed):
        return client.chat.completions.create(
            model="base", messages=[{"role": "user", "content": "Tell me a story."}],
            temperature=1.0, top_p=0.95, max_tokens=16, seed=seed).choices[0].message.content

    assert sample(1234) == sample(1234)


def test_max_completion_tokens_and_max_tokens_bound_output(client):
    r = client.chat.completions.create(model="base", messages=FRANCE,
                                       max_completion_tokens=3)
    assert r.usage.completion_tokens == 3 and r.choices[0].finish_reason == "length"
    r = client.chat.completions.create(model="base", messages=FRANCE, max_tokens=2)
    assert r.usage.completion_tokens == 2


def test_completions(client):
    r = client.completions.create(model="base", prompt="The capital of France is",
                                  max_tokens=4, temperature=0)
    assert r.object == "text_completion" and r.choices[0].text
    assert r.usage.completion_tokens == 4


def test_completions_stream_with_usage(client):
    chunks = list(client.completions.create(
        model="base", prompt=["Once upon a time", "In a galaxy"], max_tokens=5,
        stream=True, stream_options={"include_usage": True}))
    assert {c.choices[0].index for c in chunks if c.choices} == {0, 1}
    assert chunks[-1].usage.completion_tokens == 10


async def test_async_client_concurrent_requests(async_client):
    import asyncio

    async def ask(i):
        r = await async_client.chat.completions.create(
            model="base", messages=[{"role": "user", "content": f"Say the number {i}."}],
            max_tokens=6, temperature=0)
        return r.choices[0].message.content

    answers = await asyncio.gather(*(ask(i) for i in range(6)))
    assert len(answers) == 6 and all(answers)


async def test_async_streaming(async_client):
    stream = await async_client.chat.completions.create(
        model="base", messages=FRANCE, temperature=0, max_tokens=24, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert "Paris" in text


def test_models_lists_routes(client):
    models = {m.id: m for m in client.models.list()}
    assert "base" in models and models["base"].owned_by == "lorag"


def test_health_and_metrics(http):
    r = http.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    text = http.get("/metrics").text
    assert "lorag_requests_total" in text
    assert "vllm:generation_tokens_total" in text  # engine metrics come along
