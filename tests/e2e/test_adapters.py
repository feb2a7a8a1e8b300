"""LoRA adapters on the real engine: load, use, replace, unload, hot swap, errors, restart.

Which weights answered is visible in the output: a `random` adapter turns the
greedy answer into something else, a `zero` adapter (B = 0) answers exactly as
the base model does, and the response's `model` names the exact version.
"""

import asyncio
import json
import os
from pathlib import Path

import boto3
import httpx
import openai
import pytest

from tests.support.keys import ADMIN, AUTH
from tests.support.lora_factory import make_lora

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "adapters" / "samples" / "json-format"
HELDOUT = ROOT / "adapters" / "samples" / "data" / "json_format.heldout.jsonl"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def loras(adapter_root):
    return {
        "random": make_lora(adapter_root / "random", seed=1),
        "random2": make_lora(adapter_root / "random2", seed=2),
        "zero": make_lora(adapter_root / "zero", zero=True),
    }


def load(http, name, source, **extra):
    return http.post("/v1/adapters", json={"name": name, "source": str(source), **extra})


def ask(client, model, max_tokens=16):
    reply = client.chat.completions.create(model=model, messages=QUESTION,
                                           max_tokens=max_tokens, temperature=0)
    return reply.model, reply.choices[0].message.content


def assert_error(response, status, code=None, param=None):
    assert response.status_code == status, response.text
    err = response.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if code is not None:
        assert err["code"] == code, err
    if param is not None:
        assert err["param"] == param, err
    return err


def test_load_use_replace_unload(http, client, loras):
    _, base_text = ask(client, "base")
    created = load(http, "swap", loras["random"])
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "loaded" and created.json()["active_version"] == "1"
    assert "swap" in [m.id for m in client.models.list().data]
    model, v1_text = ask(client, "swap")
    assert model == "swap@1" and v1_text != base_text

    replaced = load(http, "swap", loras["zero"])
    assert replaced.status_code == 201 and replaced.json()["active_version"] == "2"
    for _ in range(3):  # the replaced version never answers again
        assert ask(client, "swap") == ("swap@2", base_text)
    states = {v["version"]: v["state"] for v in http.get("/v1/adapters/swap").json()["versions"]}
    assert states == {"1": "retired", "2": "active"}

    stream = client.completions.create(model="swap", prompt="The capital of France is",
                                       max_tokens=8, temperature=0, stream=True)
    chunks = list(stream)
    assert chunks and all(c.model == "swap@2" for c in chunks)

    deleted = http.delete("/v1/adapters/swap")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    with pytest.raises(openai.NotFoundError) as info:
        ask(client, "swap")
    assert info.value.body["code"] == "model_not_found"
    assert "swap" not in [m.id for m in client.models.list().data]
    assert http.get("/v1/adapters/swap").json()["state"] == "unloaded"
    assert_error(http.delete("/v1/adapters/swap"), 404, "adapter_not_found")

    # The same content again is the same version, with the same weights.
    again = load(http, "swap", loras["random"])
    assert again.status_code == 201 and again.json()["active_version"] == "1"
    assert ask(client, "swap") == ("swap@1", v1_text)
    http.delete("/v1/adapters/swap")


async def test_swap_and_unload_under_traffic(async_client, http, loras):
    assert (await asyncio.to_thread(load, http, "live", loras["random"])).status_code == 201
    stop, seen, done = asyncio.Event(), set(), []

    async def user():
        while not stop.is_set():
            stream = await async_client.chat.completions.create(
                model="live", messages=QUESTION, max_tokens=12, temperature=0, stream=True)
            async for chunk in stream:
                seen.add(chunk.model)
            done.append(1)

    async def until_seen(version: str, timeout_s: float = 180) -> None:
        # How many requests fit in a few seconds depends on the machine's load (CI's
        # 2 cores run the whole suite): wait for the version instead of a fixed time.
        deadline = asyncio.get_running_loop().time() + timeout_s
        while version not in seen and asyncio.get_running_loop().time() < deadline:
            if any(u.done() for u in users):
                break               # a failed request: gather() below raises it
            await asyncio.sleep(0.2)

    users = [asyncio.create_task(user()) for _ in range(4)]
    await until_seen("live@1")
    for version, source in (("live@2", loras["random2"]), ("live@3", loras["zero"])):
        reply = await asyncio.to_thread(load, http, "live", source)  # replaced under traffic
        assert reply.status_code == 201, reply.text
        await until_seen(version)
    stop.set()
    await asyncio.gather(*users)  # any failed request raises here
    assert {"live@1", "live@2", "live@3"} <= seen and len(done) >= 4

    # Unload while long requests run: they finish on the version they started on.
    streams = [await async_client.chat.completions.create(
        model="live", messages=QUESTION, max_tokens=40, temperature=0, stream=True,
        stream_options={"include_usage": True}) for _ in range(3)]
    firsts = [await anext(aiter(s)) for s in streams]
    assert (await asyncio.to_thread(http.delete, "/v1/adapters/live")).status_code == 200

    async def finish(stream):
        return [chunk async for chunk in stream]

    for first, rest in zip(firsts, await asyncio.gather(*(finish(s) for s in streams))):
        assert first.model == "live@3" and rest[-1].usage.completion_tokens > 0
    with pytest.raises(openai.NotFoundError):
        await async_client.chat.completions.create(model="live", messages=QUESTION)


def _valid_json_answer(text: str) -> bool:
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return False
    return (isinstance(data, dict) and set(data) == {"answer", "confidence"}
            and isinstance(data["answer"], str)
            and data["confidence"] in ("high", "medium", "low"))


async def test_sample_adapter_answers_in_json(http, async_client):
    reply = await asyncio.to_thread(load, http, "json-format", SAMPLE)
    assert reply.status_code == 201, reply.text
    questions = [json.loads(line) for line in HELDOUT.read_text().splitlines() if line.strip()]
    questions = [q["messages"][0]["content"] if "messages" in q else q["prompt"]
                 for q in questions][:24]

    async def rate(model):
        async def one(question):
            r = await async_client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": question}],
                max_tokens=48, temperature=0)
            return _valid_json_answer(r.choices[0].message.content)

        results = await asyncio.gather(*(one(q) for q in questions))
        return sum(results) / len(results)

    base, tuned = await rate("base"), await rate("json-format")
    print(f"valid JSON on {len(questions)} held-out prompts: base {base:.2f}, adapter {tuned:.2f}")
    assert tuned >= 0.9 and tuned - base >= 0.6


def test_s3_source(http, client, s3_url, loras):
    s3 = boto3.client("s3", endpoint_url=s3_url)
    s3.create_bucket(Bucket="lorag-adapters")
    for f in loras["zero"].iterdir():
        s3.put_object(Bucket="lorag-adapters", Key=f"tone/v1/{f.name}", Body=f.read_bytes())
    reply = load(http, "from-s3", "s3://lorag-adapters/tone/v1")
    assert reply.status_code == 201, reply.text
    assert reply.json()["versions"][0]["source"] == "s3://lorag-adapters/tone/v1"
    assert ask(client, "from-s3")[0] == "from-s3@1"
    assert_error(load(http, "from-s3", "s3://lorag-adapters/missing"), 400, "adapter_not_found")
    http.delete("/v1/adapters/from-s3")


def _copy(src: Path, dst: Path, **config_changes) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg.update(config_changes)
    (dst / "adapter_config.json").write_text(json.dumps(cfg))
    return dst


def test_bad_adapters_are_clear_400s_and_the_server_keeps_serving(http, client, loras,
                                                                    adapter_root):
    bad = adapter_root / "bad"
    (bad / "empty").mkdir(parents=True, exist_ok=True)
    broken = _copy(loras["zero"], bad / "broken-json")
    (broken / "adapter_config.json").write_text("{not json")
    truncated = _copy(loras["zero"], bad / "truncated")
    (truncated / "adapter_model.safetensors").write_bytes(b"\x00" * 100)
    cases = [
        (bad / "empty", "invalid_adapter"),
        (bad / "nowhere", "adapter_not_found"),
        (broken, "invalid_adapter"),
        (_copy(loras["zero"], bad / "wrong-base", base_model_name_or_path="org/Other-7B"),
         "base_model_mismatch"),
        (make_lora(bad / "rank32", rank=32, zero=True), "rank_too_large"),
        (truncated, "invalid_adapter"),
        ("ftp://example.com/adapter", "unsupported_source"),
        ("../../etc", "path_not_allowed"),
        (str(adapter_root / ".." / ".." / "etc"), "path_not_allowed"),
    ]
    for source, code in cases:
        err = assert_error(load(http, "bad", source), 400, code, "source")
        assert str(adapter_root) not in err["message"]
    assert_error(load(http, "base", loras["zero"]), 400, "name_conflict", "name")
    assert_error(load(http, "no spaces", loras["zero"]), 400, None, "name")
    assert_error(http.post("/v1/adapters", json={"name": "x"}), 400, None, "source")
    assert_error(http.post("/v1/adapters", content=b"{oops",
                           headers={"content-type": "application/json"}), 400)
    assert_error(load(http, "x", loras["zero"], base_model="nope"), 400, None, "base_model")
    assert_error(http.get("/v1/adapters/never-loaded"), 404, "adapter_not_found")
    assert_error(http.delete("/v1/adapters/never-loaded"), 404, "adapter_not_found")
    assert "bad" not in [a["id"] for a in http.get("/v1/adapters").json()["data"]]
    assert http.get("/health").status_code == 200
    assert "Paris" in ask(client, "base")[1]


def test_registry_survives_a_restart(server, loras):
    if os.environ.get("LORAG_TEST_URL"):
        pytest.skip("needs the session server this test started")
    with httpx.Client(base_url=server.url, timeout=300, headers=AUTH) as http:
        assert load(http, "kept", loras["random"]).status_code == 201
        before = http.get("/v1/adapters/kept").json()
    server.restart()
    with httpx.Client(base_url=server.url, timeout=300, headers=AUTH) as http:
        assert http.get("/v1/adapters/kept").json() == before
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=ADMIN, max_retries=0)
        assert ask(client, "kept")[0] == "kept@1"
        http.delete("/v1/adapters/kept")
