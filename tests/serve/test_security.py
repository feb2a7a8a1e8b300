"""Keys, scopes, rate limits, caps, back-pressure, timeouts and engine errors, through the
whole app on Ray Serve with a fake engine (the real engine's prompt cap and a killed
replica are covered in tests/e2e/test_security.py and test_faults.py).

Every refusal must be OpenAI's error JSON with the right status and come at once;
the server keeps serving after each.
"""

import asyncio
import json
import time

import httpx
import openai
import pytest

from serving.auth import hash_key
from serving.config import parse_config
from serving.envelope import ok
from tests.serve.fakes import FakeLLMServerBase, serve_app

pytestmark = pytest.mark.own_cluster  # see tests/conftest.py

USER, ADMIN = "sk-lorag-test-user-000000000000", "sk-lorag-test-admin-00000000000"
LIMITED, THRIFTY = "sk-lorag-test-limited-0000000000", "sk-lorag-test-thrifty-0000000000"
SHAPE = {"message", "type", "param", "code"}


class FakeLLMServer(FakeLLMServerBase):
    """Answers at once with 60 tokens of usage; the last user message steers it:
    `sleep:<s>` waits first, `boom` raises (an engine failure)."""

    async def chat(self, request, prompt=None):
        text = request.messages[-1]["content"]
        if text.startswith("sleep:"):
            await asyncio.sleep(float(text.split(":")[1]))
        if text == "boom":
            raise RuntimeError("engine exploded at /secret/path.py")
        usage = {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60}
        if request.stream:
            yield 'data: {"choices": [{"delta": {"content": "hi"}}]}\n\n'
            await asyncio.sleep(float(text.split(":")[1]) if text.startswith("slow:") else 0)
            yield "data: [DONE]\n\n"
            return
        yield ok({"object": "chat.completion", "model": request.model, "usage": usage,
                  "max_tokens": request.max_tokens,
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                               "finish_reason": "stop"}]})


def config(keys_file: str) -> dict:
    return {
        "server": {"app_name": "security",
                   "ingress": {"deployment": {"num_cpus": 0.1}, "request_timeout_s": 6,
                               "max_request_bytes": 64 * 1024},
                   "auth": {"keys_file": keys_file}},
        "models": {"smol": {"source": "fake", "engine": {"enable_lora": False},
                            "deployment": {"num_replicas": 1, "num_cpus": 0.1}}},
        "retrieval": {"deployment": {"num_replicas": 1, "num_cpus": 0.1}},
        "routes": [
            {"name": "base", "model": "smol"},
            {"name": "capped", "model": "smol", "limits": {"max_tokens": 16}},
            # One request at a time, one waiting: the rest are refused at once.
            {"name": "narrow", "model": "smol", "deployment": {
                "num_replicas": 1, "num_cpus": 0.1, "max_ongoing_requests": 1,
                "max_queued_requests": 1}},
        ],
    }


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    work = tmp_path_factory.mktemp("security")
    keys_file = work / "keys.json"   # as a mounted Secret: plain keys, hashed when read
    keys_file.write_text(json.dumps([
        {"name": "app", "scopes": ["user"], "key": USER},
        {"name": "ops", "scopes": ["admin"], "key": ADMIN},
        {"name": "limited", "key": LIMITED, "limits": {"requests_per_minute": 3}},
        {"name": "thrifty", "key": THRIFTY, "limits": {"tokens_per_minute": 100}},
    ]))
    with serve_app(parse_config(config(str(keys_file))), FakeLLMServer, "security",
                   str(tmp_path_factory.mktemp("data"))) as url:
        # A handle's first call waits for its router (12-27 s on a busy 2-core machine):
        # longer than the 6 s timeout here, so warm both LLM deployments' routers up.
        deadline = time.monotonic() + 180
        for model in ("base", "narrow"):
            while chat(url, key=ADMIN, model=model).status_code != 200:
                assert time.monotonic() < deadline, f"{model} never answered"
                time.sleep(1)
        yield url


def chat(url, key=None, content="hello", model="base", **extra) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=30,
                      json={"model": model, "messages": [{"role": "user", "content": content}],
                            **extra})


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == SHAPE, body
    return body["error"]


def test_keys_and_scopes(url):
    missing = chat(url)
    assert missing.status_code == 401 and error_of(missing)["code"] == "missing_api_key"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = chat(url, key=USER + "x")
    assert wrong.status_code == 401 and error_of(wrong)["code"] == "invalid_api_key"
    assert chat(url, key=USER).status_code == 200
    assert chat(url, key=ADMIN).status_code == 200      # admin includes user
    user = {"Authorization": f"Bearer {USER}"}
    assert httpx.get(f"{url}/v1/models", headers=user).status_code == 200
    # a user key reads indexes and adapters (its grants: all by default) but changes
    # none without `manages` (tests/serve/test_tenants.py has the grants)
    assert httpx.get(f"{url}/v1/indexes", headers=user).status_code == 200
    doc = {"documents": [{"doc_id": "d", "text": "t"}]}
    for method, path, body in [("POST", "/v1/indexes/kb/documents", doc),
                               ("DELETE", "/v1/adapters/x", None),
                               ("POST", "/v1/adapters", {"name": "x", "source": "/x"}),
                               ("GET", "/v1/deployments", None)]:
        denied = httpx.request(method, f"{url}{path}", headers=user, json=body)
        assert denied.status_code == 403, (path, denied.text)
        assert error_of(denied)["code"] == "insufficient_scope"
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert httpx.get(f"{url}/v1/indexes", headers=admin).status_code == 200
    assert httpx.get(f"{url}/health").status_code == 200          # probes need no key
    # The official client maps 401 to its AuthenticationError.
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    good = openai.OpenAI(base_url=f"{url}/v1", api_key=USER, max_retries=0)
    assert "base" in [m.id for m in good.models.list().data]


def test_request_rate_limit_answers_429_with_retry_after(url):
    codes = [chat(url, key=LIMITED) for _ in range(4)]
    assert [r.status_code for r in codes[:3]] == [200, 200, 200]
    refused = codes[3]
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 20   # one request refills in 20 s
    assert refused.headers["x-ratelimit-limit-requests"] == "3"
    assert chat(url, key=USER).status_code == 200             # other keys unaffected


def test_token_rate_limit_counts_answers(url):
    assert chat(url, key=THRIFTY).status_code == 200   # 60 tokens of 100
    time.sleep(0.5)                                     # the charge is sent after the answer
    assert chat(url, key=THRIFTY).status_code == 200   # 40 left: may start, ends 20 in debt
    time.sleep(0.5)
    refused = chat(url, key=THRIFTY)
    assert refused.status_code == 429, refused.text
    assert "tokens per minute" in error_of(refused)["message"]
    assert int(refused.headers["retry-after"]) >= 1


def test_route_caps_max_tokens(url):
    over = chat(url, key=USER, model="capped", max_tokens=17)
    assert over.status_code == 400 and error_of(over)["param"] == "max_tokens"
    assert chat(url, key=USER, model="capped").json()["max_tokens"] == 16   # capped default


def test_body_size_limit(url):
    big = "x" * (80 * 1024)
    refused = chat(url, key=USER, content=big)
    assert refused.status_code == 413 and error_of(refused)["code"] == "request_too_large"
    assert chat(url, key=USER).status_code == 200


def test_full_queue_is_refused_at_once_with_503(url):
    async def burst():
        async with httpx.AsyncClient(timeout=30) as client:
            async def one():
                t0 = time.monotonic()
                r = await client.post(
                    f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {USER}"},
                    json={"model": "narrow",
                          "messages": [{"role": "user", "content": "sleep:1.5"}]})
                return r, time.monotonic() - t0
            return await asyncio.gather(*(one() for _ in range(6)))

    results = asyncio.run(burst())
    statuses = sorted(r.status_code for r, _ in results)
    assert 200 in statuses and 503 in statuses, statuses
    assert set(statuses) <= {200, 503}
    for response, took in results:
        if response.status_code == 503:
            assert error_of(response)["code"] == "overloaded"
            assert int(response.headers["retry-after"]) >= 1
            assert took < 1.5, took          # refused at once, not after waiting
    assert chat(url, key=USER, model="narrow").status_code == 200


def test_engine_error_is_503_and_timeout_504(url):
    failed = chat(url, key=USER, content="boom")
    assert failed.status_code == 503, failed.text
    assert "secret" not in failed.text and error_of(failed)["code"] == "engine_error"
    t0 = time.monotonic()
    slow = chat(url, key=USER, content="sleep:20")
    assert slow.status_code == 504 and error_of(slow)["code"] == "timeout"
    assert time.monotonic() - t0 < 15
    # A stream that outlives the timeout ends with an error event, not a hang.
    with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=30,
                      headers={"Authorization": f"Bearer {USER}"},
                      json={"model": "base", "stream": True,
                            "messages": [{"role": "user", "content": "slow:20"}]}) as r:
        text = "".join(r.iter_text())
    assert '"code": "timeout"' in text and text.rstrip().endswith("data: [DONE]")
    assert chat(url, key=USER).status_code == 200
