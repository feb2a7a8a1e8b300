"""Bad input gets OpenAI's error JSON with the right status; the server keeps serving."""

import openai
import pytest

pytestmark = pytest.mark.e2e

OK = {"model": "base", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def bad(**overrides):
    body = dict(OK)
    body.update(overrides)
    return body


def assert_error(r, status, param=None, code=None):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] in ("invalid_request_error", "server_error")
    assert "Traceback" not in r.text and "/work" not in r.text and ".py" not in r.text
    if param is not None:
        assert err["param"] == param, err
    if code is not None:
        assert err["code"] == code, err
    return err


CASES = [
    (bad(model="no-such-model"), 404, "model", "model_not_found"),
    (bad(max_tokens=0), 400, "max_tokens", None),
    (bad(max_completion_tokens=0), 400, "max_completion_tokens", None),
    (bad(temperature=-1), 400, "temperature", None),
    (bad(top_p=0), 400, "top_p", None),
    (bad(n=0), 400, "n", None),
    (bad(messages=[]), 400, "messages", None),
    (bad(messages=[{"role": "wizard", "content": "hi"}]), 400, "messages.0.role", None),
    (bad(messages=[{"role": "user", "content": "hello " * 3000}]), 400, "messages",
     "context_length_exceeded"),
    (bad(max_tokens=4000), 400, None, None),
    (bad(stop=5), 400, "stop", None),
    ({"messages": OK["messages"]}, 400, "model", None),
    # the engine serves LoRA: vLLM would die computing prompt log-probabilities
    (bad(prompt_logprobs=1), 400, "prompt_logprobs", "unsupported_parameter"),
    (bad(echo=True), 400, "echo", "unsupported_parameter"),
]


@pytest.mark.parametrize("body, status, param, code", CASES,
                         ids=[f"{c[1]}-{c[2]}" for c in CASES])
def test_bad_chat_requests(http, body, status, param, code):
    assert_error(http.post("/v1/chat/completions", json=body), status, param, code)


def test_bad_streaming_request_errors_before_streaming(http):
    body = bad(stream=True, messages=[{"role": "user", "content": "hello " * 3000}])
    r = http.post("/v1/chat/completions", json=body)
    assert_error(r, 400, "messages", "context_length_exceeded")


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1,2,3]", b"\xff\xfe\x00"])
def test_malformed_json(http, raw):
    r = http.post("/v1/chat/completions", content=raw,
                  headers={"content-type": "application/json"})
    assert_error(r, 400, code="invalid_json")


def test_completion_errors(http):
    assert_error(http.post("/v1/completions", json={"model": "base", "prompt": ""}), 400,
                 "prompt")
    assert_error(http.post("/v1/completions", json={"model": "nope", "prompt": "x"}), 404,
                 "model")
    assert_error(http.post("/v1/completions",
                           json={"model": "base", "prompt": "x " * 3000}), 400, "prompt",
                 "context_length_exceeded")


def test_unknown_path_and_method(http):
    assert_error(http.get("/v1/nothing"), 404)
    assert_error(http.get("/v1/chat/completions"), 405)


def test_openai_client_raises_typed_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=OK["messages"])
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="base", messages=OK["messages"], temperature=-2)
    assert info.value.body["param"] == "temperature"


def test_server_keeps_serving_after_errors(http, client):
    for body, *_ in CASES:
        http.post("/v1/chat/completions", json=body)
    r = client.chat.completions.create(model="base", messages=[
        {"role": "user", "content": "What is the capital of France?"}], temperature=0,
        max_tokens=24)
    assert "Paris" in r.choices[0].message.content
    assert http.get("/health").status_code == 200


def test_route_caps_on_the_real_engine(http):
    """The `tuned` route caps max_tokens at 256 and prompts at 1024 tokens (default config);
    the prompt is counted with the model's tokenizer, as the chat template renders it."""
    tuned = {"model": "tuned", "messages": OK["messages"]}
    assert_error(http.post("/v1/chat/completions", json={**tuned, "max_tokens": 257}), 400,
                 "max_tokens", "max_tokens_exceeded")
    long = [{"role": "user", "content": "word " * 1100}]   # ~1100 tokens: fits the context
    assert_error(http.post("/v1/chat/completions", json={**tuned, "messages": long}), 400,
                 "messages", "prompt_too_long")
    assert_error(http.post("/v1/completions", json={"model": "tuned", "prompt": "word " * 1100}),
                 400, "prompt", "prompt_too_long")
    # the base route has no cap: the same prompt is answered
    r = http.post("/v1/chat/completions", json={"model": "base", "messages": long,
                                                 "max_tokens": 2})
    assert r.status_code == 200, r.text


def test_prompt_logprobs_are_refused_before_they_reach_the_engine(http):
    """Several at once used to kill vLLM's engine (LoRA logits layer, vllm#29955): every
    request failed until the replica was replaced. Now each is a 400 and the server
    answers the next request."""
    from concurrent.futures import ThreadPoolExecutor

    bodies = [bad(prompt_logprobs=0, max_tokens=8) for _ in range(4)]
    bodies.append({"model": "base", "prompt": "Hello", "max_tokens": 2, "echo": True,
                   "logprobs": 1})
    with ThreadPoolExecutor(5) as pool:
        replies = list(pool.map(lambda b: http.post(
            "/v1/completions" if "prompt" in b else "/v1/chat/completions", json=b), bodies))
    for r in replies:
        assert_error(r, 400, code="unsupported_parameter")
    assert http.post("/v1/chat/completions", json=OK).status_code == 200
