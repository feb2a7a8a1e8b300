"""Error mapping: every failure becomes OpenAI's error JSON with the right status."""

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters import errors as adapter_errors
from lorag_core.errors import DomainError, ErrorKind
from retrieval import errors as retrieval_errors
from serving.errors import (
    InvalidRequestError,
    LoragError,
    ModelNotFoundError,
    error_body,
    error_from_wire,
    error_to_wire,
    from_domain_error,
    from_vllm_error,
    pydantic_param,
    register_exception_handlers,
    sanitize,
)
from serving.protocol import decode_json_body, parse_chat_request, parse_completion_request

SHAPE = {"message", "type", "param", "code"}


def chat(**overrides):
    body = {"model": "base", "messages": [{"role": "user", "content": "hi"}]}
    body.update(overrides)
    return body


def test_error_body_has_openai_shape():
    body = error_body("bad", "invalid_request_error", "max_tokens", "invalid_value")
    assert set(body["error"]) == SHAPE
    assert body["error"]["param"] == "max_tokens"


def test_model_not_found_is_404_naming_model():
    err = ModelNotFoundError("gpt-9", ["base", "rag"])
    assert err.status == 404 and err.param == "model" and err.code == "model_not_found"
    assert "base, rag" in err.message


@pytest.mark.parametrize("vllm_param", ["input_tokens", "input_text", None])
def test_context_length_maps_to_prompt_param(vllm_param):
    err = from_vllm_error({
        "message": "This model's maximum context length is 2048 tokens. However, ...",
        "type": "BadRequestError", "param": vllm_param, "code": 400}, "messages")
    assert err.status == 400
    assert err.param == "messages" and err.code == "context_length_exceeded"
    assert err.type == "invalid_request_error"


def test_vllm_statuses_are_kept():
    assert from_vllm_error({"message": "x", "code": 404}, "prompt").status == 404
    assert from_vllm_error({"message": "x", "code": 422}, "prompt").status == 422
    assert from_vllm_error({"message": "x", "code": 503}, "prompt").status == 503
    # An engine failure is a 503 the client may retry (the replica is replaced).
    five = from_vllm_error({"message": "x", "code": 500}, "prompt")
    assert five.status == 503 and five.type == "server_error"
    assert five.code == "engine_error" and five.headers["Retry-After"]


def test_sanitize_removes_paths_and_traces():
    msg = ('boom\n  File "/work/main/serving/api.py", line 3, in f\n    x()\n'
           "see /root/.cache/lorag/models/x and serving/api.py")
    out = sanitize(msg)
    assert "/root" not in out and "api.py" not in out and "File" not in out
    assert out.startswith("boom")


def test_sanitize_keeps_api_paths():
    assert sanitize("use /v1/chat/completions, not /srv/app/v1/x") == \
        "use /v1/chat/completions, not <path>"


def test_pydantic_param_drops_schema_segments():
    loc = ("body", "function-wrap[__log_extra_fields__()]", "messages", 0, "role")
    assert pydantic_param(loc) == "messages.0.role"


@pytest.mark.parametrize(
    "overrides, param",
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": -3}, "max_completion_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"n": 0}, "n"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": []}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [], "x": None}]}, "messages.0.content"),
        ({"model": None}, "model"),
        ({"model": 5}, "model"),
        ({"stop": 5}, "stop"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_bad_chat_parameters_are_400_naming_the_parameter(overrides, param):
    with pytest.raises(InvalidRequestError) as info:
        parse_chat_request(chat(**overrides))
    assert info.value.status == 400
    assert info.value.param == param


def test_good_chat_request_keeps_openai_fields():
    req = parse_chat_request(chat(n=2, stop=["\n"], seed=7, temperature=0, top_p=0.5,
                                  max_completion_tokens=5, stream=True,
                                  stream_options={"include_usage": True}))
    assert req.n == 2 and req.stop == ["\n"] and req.seed == 7
    assert req.max_completion_tokens == 5 and req.stream_options.include_usage


@pytest.mark.parametrize("content", [
    [{"type": "text", "text": "hi"}],
    [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}],
])
def test_parsed_chat_requests_can_be_sent_to_the_llm_replica(content):
    """The request crosses a Ray call: nothing in it may be a lazy pydantic iterator
    (a fuzzed `content: []` was a 500: "cannot pickle ValidatorIterator")."""
    import pickle

    req = parse_chat_request(chat(messages=[{"role": "user", "content": content}]))
    assert pickle.loads(pickle.dumps(req)).messages[0]["content"] == content


@pytest.mark.parametrize("prompt", ["", [], None, ["ok", ""]])
def test_empty_prompt_is_400(prompt):
    with pytest.raises(InvalidRequestError) as info:
        parse_completion_request({"model": "base", "prompt": prompt})
    assert info.value.param == "prompt"


def test_completion_rejects_chat_only_parameter():
    with pytest.raises(InvalidRequestError) as info:
        parse_completion_request({"model": "base", "prompt": "x", "max_completion_tokens": 3})
    assert info.value.param == "max_completion_tokens"


@pytest.mark.parametrize("raw", [b"", b"   ", b"{bad", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_malformed_json_is_400(raw):
    with pytest.raises(InvalidRequestError) as info:
        decode_json_body(raw, 1024)
    assert info.value.code == "invalid_json"


def test_oversized_body_is_413():
    with pytest.raises(LoragError) as info:
        decode_json_body(b"{" + b" " * 2048 + b"}", 1024)
    assert info.value.status == 413


def test_handlers_answer_in_openai_shape_and_hide_internals():
    app = FastAPI()
    register_exception_handlers(app)

    @app.get("/lorag")
    async def lorag_error():
        raise InvalidRequestError("bad top_p", param="top_p", code="invalid_value")

    @app.get("/crash")
    async def crash():
        raise RuntimeError("secret at /root/.cache/x.py")

    @app.get("/typed")
    async def typed(n: int):
        return {"n": n}

    client = TestClient(app, raise_server_exceptions=False)
    r = client.get("/lorag", headers={"X-Request-Id": "abc"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "top_p"
    r = client.get("/crash", headers={"X-Request-Id": "req-42"})
    assert r.status_code == 500
    body = r.json()["error"]
    assert set(body) == SHAPE and "req-42" in body["message"]
    assert "secret" not in json.dumps(body) and "Traceback" not in r.text
    r = client.get("/typed", params={"n": "x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "query.n"
    r = client.get("/absent")
    assert r.status_code == 404 and set(r.json()["error"]) == SHAPE
    r = client.post("/lorag")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


# What a client saw for each retrieval and adapter failure before the domain packages had
# their own errors: (status, type, param, code, Retry-After).
DOMAIN_ERRORS = [
    (retrieval_errors.InvalidInputError("top_k must be ...", param="top_k",
                                        code="invalid_value"),
     (400, "invalid_request_error", "top_k", "invalid_value", None)),
    (retrieval_errors.IndexNotFoundError("index 'x' does not exist.", param="index",
                                         code="index_not_found"),
     (404, "invalid_request_error", "index", "index_not_found", None)),
    (retrieval_errors.IndexExistsError("index 'x' already exists.", param="name",
                                       code="index_exists"),
     (409, "invalid_request_error", "name", "index_exists", None)),
    (retrieval_errors.UnknownEmbeddingModelError("gpt-9", ["minilm"]),
     (404, "invalid_request_error", "model", "model_not_found", None)),
    (retrieval_errors.RerankerUnavailableError("no rerank model 'ql' loaded; retry",
                                               retry_after=5),
     (503, "server_error", None, None, "5")),
    (adapter_errors.InvalidInputError("adapter rank 64 exceeds ...", param="source",
                                      code="invalid_adapter"),
     (400, "invalid_request_error", "source", "invalid_adapter", None)),
    (adapter_errors.AdapterNotFoundError("adapter 'x' is not loaded.",
                                         code="adapter_not_found"),
     (404, "invalid_request_error", None, "adapter_not_found", None)),
    (adapter_errors.SourceUnavailableError("could not download org/x from the Hugging Face "
                                           "hub: OSError"),
     (503, "server_error", None, None, None)),
]


@pytest.mark.parametrize("err, seen", DOMAIN_ERRORS)
def test_domain_errors_map_to_the_statuses_clients_saw(err, seen):
    mapped = from_domain_error(err)
    assert (mapped.status, mapped.type, mapped.param, mapped.code,
            mapped.headers.get("Retry-After")) == seen
    assert mapped.message == err.message
    wire = error_to_wire(err)  # what a retriever or registry replica sends to the ingress
    assert error_from_wire(wire).to_body() == mapped.to_body()


def test_embedding_model_not_found_reads_as_the_chat_one():
    assert (retrieval_errors.UnknownEmbeddingModelError("gpt-9", ["base", "rag"]).message
            == ModelNotFoundError("gpt-9", ["base", "rag"]).message)


def test_every_domain_error_has_a_kind_the_edge_maps():
    def concrete(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from concrete(sub)

    classes = [c for c in concrete(DomainError) if "kind" in vars(c) or c.__subclasses__() == []]
    assert classes
    for cls in classes:
        assert isinstance(getattr(cls, "kind", None), ErrorKind), cls


def test_a_domain_error_escaping_a_handler_is_openai_json():
    app = FastAPI()
    register_exception_handlers(app)

    @app.get("/search")
    async def search():
        raise retrieval_errors.RerankerUnavailableError("no rerank model; retry",
                                                        retry_after=5)

    r = TestClient(app, raise_server_exceptions=False).get("/search")
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.json() == {"error": {"message": "no rerank model; retry", "type": "server_error",
                                  "param": None, "code": None}}
