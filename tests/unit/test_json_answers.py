"""JSON answers: a route's default response_format (checked at start-up, applied to requests
that set none, passed on to vLLM's structured outputs) and the unwrapping of JSON answers
a model wrapped in a Markdown code fence (no engine: fakes stand in for it)."""

import asyncio
import json
from types import SimpleNamespace

import pytest

from serving.route_settings import JSON_LAYOUT

from serving.api import OpenAIService
from serving.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config
from serving.llm_server import LLMServer, json_answers
from serving.rag import unwrap_json_fence
from serving.route_prompt import RoutePrompt
from tests.support.answers import answer_checks
from tests.support.ingress import FakeLLM, chat

SCHEMA = {"type": "object",
          "properties": {"answer": {"type": "string"},
                         "confidence": {"enum": ["high", "medium", "low"]}},
          "required": ["answer", "confidence"], "additionalProperties": False}
JSON_SCHEMA = {"type": "json_schema",
               "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}}
NO_CONTEXT = '{"answer": "I don\'t know.", "confidence": "low"}'


def config(**route):
    return {"models": {"smol": {"source": "builtin:smollm2-135m-instruct"}},
            "indexes": {"kb": {"type": "flat"}},
            "routes": [{"name": "base", "model": "smol"},
                       {"name": "r", "model": "smol", **route}]}


# -- config ---------------------------------------------------------------------------


def test_a_route_takes_an_openai_response_format():
    cfg = parse_config(config(response_format=JSON_SCHEMA, answer_format="json"))
    route = cfg.route("r")
    assert route.response_format.json_schema.schema_ == SCHEMA
    assert route.answer_format == "json" and cfg.route("base").answer_format == "text"
    assert cfg.route("base").response_format is None
    # written back (dump_config, the Ray Serve deployments) and read again unchanged
    dumped = cfg.model_dump(mode="json")
    assert dumped["routes"][1]["response_format"]["json_schema"]["schema"] == SCHEMA
    assert parse_config(dumped).route("r") == route
    for simple in ({"type": "json_object"}, {"type": "text"}):
        assert parse_config(config(response_format=simple)).route("r").response_format.type \
            == simple["type"]


@pytest.mark.parametrize("response_format, pattern", [
    ({"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "strin"}}},
     r"routes\.1\.response_format\.json_schema\.schema: not a valid JSON Schema \(at type\)"),
    ({"type": "json_schema", "json_schema": {"name": "answer", "schema": {
        "type": "object", "properties": {"answer": {"type": 3}}}}},
     r"routes\.1\.response_format\.json_schema\.schema: .*\(at properties/answer/type\)"),
    ({"type": "json_schema", "json_schema": {"name": "answer", "schema": {
        "type": "object", "required": "answer"}}},
     r"routes\.1\.response_format\.json_schema\.schema: .*\(at required\)"),
    ({"type": "json_schema", "json_schema": {"name": "an answer", "schema": SCHEMA}},
     r"routes\.1\.response_format\.json_schema\.name: String should match pattern"),
    ({"type": "json_schema", "json_schema": {"name": "a" * 65, "schema": SCHEMA}},
     r"routes\.1\.response_format\.json_schema\.name"),
    ({"type": "json_schema", "json_schema": {"name": "answer"}},
     r"routes\.1\.response_format\.json_schema\.schema: Field required"),
    ({"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA,
                                             "strikt": True}},
     r"routes\.1\.response_format\.json_schema\.strikt: Extra inputs"),
    ({"type": "json_schema"},
     r"routes\.1\.response_format: json_schema: required when type is 'json_schema'"),
    ({"type": "json_object", "json_schema": {"name": "answer", "schema": SCHEMA}},
     r"routes\.1\.response_format: json_schema: only allowed with type 'json_schema'"),
    ({"type": "xml"}, r"routes\.1\.response_format\.type"),
])
def test_a_bad_response_format_fails_at_start_up_naming_the_field(response_format, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse_config(config(response_format=response_format))


def test_answer_format_is_text_or_json():
    with pytest.raises(ConfigError, match=r"routes\.1\.answer_format"):
        parse_config(config(answer_format="yaml"))


@pytest.mark.parametrize("route, answer, pattern", [
    ({"answer_format": "json"}, "I don't know.", r"is not JSON"),
    ({"response_format": {"type": "json_object"}}, "[1]",
     r"not valid against the schema: \[1\] is not of type 'object'"),
    ({"response_format": JSON_SCHEMA}, '{"answer": "I don\'t know."}',
     r"not valid against the schema: 'confidence' is a required property"),
    ({"response_format": JSON_SCHEMA}, '{"answer": "?", "confidence": "none"}',
     r"not valid against the schema \(at confidence\)"),
])
def test_a_json_retrieval_route_needs_a_json_no_context_answer(route, answer, pattern):
    data = config(retrieval={"index": "kb", "add_markers": False},
                  template={"no_context_answer": answer}, **route)
    with pytest.raises(ConfigError, match=r"routes\.1\.template\.no_context_answer: route "
                                          r"'r' answers JSON but .*" + pattern):
        parse_config(data)
    data["routes"][1]["template"]["no_context_answer"] = NO_CONTEXT
    parse_config(data)
    # without retrieval the no-context answer is never used
    parse_config(config(template={"no_context_answer": answer}, **route))


def test_the_default_config_still_loads():
    load_config(DEFAULT_CONFIG_PATH)


# -- requests: the route's default, unless the request asks for a format itself ----------


def test_the_route_default_fills_a_request_without_a_format():
    route = parse_config(config(response_format=JSON_SCHEMA,
                                sampling={"temperature": 0})).route("r")
    body = route.request_defaults({"model": "r"})
    assert body["response_format"] == JSON_SCHEMA and body["temperature"] == 0
    for own in ({"response_format": {"type": "text"}},
                {"response_format": {"type": "json_object"}},
                {"structured_outputs": {"regex": "[a-z]+"}}):
        assert route.request_defaults({"model": "r", **own}) == {
            "model": "r", "temperature": 0, **own}
    # null is unset, as for the sampling defaults
    assert route.request_defaults({"model": "r", "response_format": None})[
        "response_format"] == JSON_SCHEMA
    plain = parse_config(config()).route("r")
    assert "response_format" not in plain.request_defaults({"model": "r"})


class RecordingLLM(FakeLLM):
    """Records the vLLM request each call gets, for chat and completions."""

    def __init__(self):
        super().__init__()
        self.requests = []
        self.completions = SimpleNamespace(remote=self._completions)

    def _chat(self, request, adapter=None, prompt=None):
        self.requests.append(request)
        return super()._chat(request, adapter, prompt)

    def _completions(self, request, adapter=None, prompt=None):
        self.requests.append(request)
        self.prompts.append(prompt)

        async def answer():
            yield {"result": {"id": "c", "object": "text_completion", "model": request.model,
                              "choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}]}}
        return answer()


def service(**route):
    llm = RecordingLLM()
    return OpenAIService(parse_config(config(**route)), {"smol": llm}), llm


async def test_the_route_default_reaches_vllms_structured_outputs():
    svc, llm = service(response_format=JSON_SCHEMA)
    await chat(svc, model="r")
    request = llm.requests[-1]
    assert request.response_format.type == "json_schema"
    # the engine gets the schema with the layout models write by themselves (no free
    # whitespace: route_settings.JSON_LAYOUT)
    laid_out = {**SCHEMA, "x-guidance": JSON_LAYOUT}
    assert request.response_format.json_schema.json_schema == laid_out
    assert request.extract_structured_outputs().json == laid_out  # what the engine enforces
    assert json_answers(request, llm.prompts[-1])

    await chat(svc, model="r", response_format={"type": "text"})  # the request's own wins
    request = llm.requests[-1]
    assert request.response_format.type == "text"
    assert request.extract_structured_outputs() is None
    assert not json_answers(request, llm.prompts[-1])

    await chat(svc, model="r", response_format={"type": "json_object"})
    assert llm.requests[-1].extract_structured_outputs().json_object is True

    await chat(svc, model="base")  # other routes are untouched
    assert llm.requests[-1].response_format is None


async def test_completions_get_the_route_default_too():
    svc, llm = service(response_format={"type": "json_object"})
    raw_body = {"model": "r", "prompt": "JSON please:"}

    async def stream():
        yield json.dumps(raw_body).encode()

    await svc.completions(SimpleNamespace(headers={}, state=SimpleNamespace(), stream=stream))
    assert llm.requests[-1].extract_structured_outputs().json_object is True


async def test_a_json_route_tells_the_llm_replica():
    svc, llm = service(answer_format="json")
    await chat(svc, model="r")
    assert llm.prompts[-1] == RoutePrompt(answer_format="json")
    assert json_answers(llm.requests[-1], llm.prompts[-1])
    await chat(svc, model="base")
    assert llm.prompts[-1] is None and not json_answers(llm.requests[-1], None)


def test_get_models_shows_the_routes_format():
    svc, _ = service(response_format=JSON_SCHEMA, answer_format="json")
    info = svc.route_info(svc.config.route("r"))
    assert info["response_format"] == JSON_SCHEMA and info["answer_format"] == "json"
    info = svc.route_info(svc.config.route("base"))
    assert info["response_format"] is None and info["answer_format"] == "text"


# -- fences ---------------------------------------------------------------------------

OBJ = '{"answer": "It is 91% [1].", "confidence": "high"}'


@pytest.mark.parametrize("text, expected", [
    (f"```json\n{OBJ}\n```", OBJ),
    (f"```JSON\n{OBJ}\n```", OBJ),
    (f"```\n{OBJ}\n```", OBJ),
    (f"  \n```json\n{OBJ}\n```\n\n", OBJ),
    (f"Here is the JSON:\n```json\n{OBJ}\n```", OBJ),
    (f"Here is the JSON:\n\n```json\n{OBJ}\n```\nI hope this helps!", OBJ),
    (f"```json {OBJ}```", OBJ),                 # on one line
    (f"```json\n{OBJ}", OBJ),                    # never closed (cut at max_tokens)
    (f"````json\n{OBJ}\n````", OBJ),             # a longer fence
    ("```json\n[1, 2]\n```", "[1, 2]"),
    ('```json\n{"code": "use ``` fences"}\n```', '{"code": "use ``` fences"}'),
    ('```\n{"md": "```json\\n{}\\n```"}\n```', '{"md": "```json\\n{}\\n```"}'),
])
def test_a_fenced_json_answer_is_unwrapped(text, expected):
    assert unwrap_json_fence(text) == expected
    assert json.loads(unwrap_json_fence(text)) == json.loads(expected)


@pytest.mark.parametrize("text", [
    "[1]",                                       # bare JSON stays as it is
    OBJ,
    f"  {OBJ}\n",
    '{"md": "```json\\n[1]\\n```"}',             # a fence inside a JSON string
    "```json\nnot json\n```",                    # the inside is no JSON
    "```json\n{\"a\": 1,}\n```",
    "```json\n{\"a\": NaN}\n```",                # Python's NaN is not JSON
    "```json\n\n```",
    "```python\n[1]\n```",                       # another language
    "It is 91% [1].",
    "Use ``` to fence code.",
    f"```json\n{OBJ[:-10]}",                     # cut before the JSON ended
    "",
])
def test_anything_else_is_left_as_it_is(text):
    assert unwrap_json_fence(text) == text


# -- the LLM replica's post-processing (a fake vLLM `create`, no engine) ----------------


def run(content, *, stream=False, json_answer=True, finish_reason="stop", completion=False,
        **kwargs):
    async def create(request, raw_request=None):
        if stream:
            async def events():
                yield "data: " + json.dumps({"choices": [
                    {"index": 0, "delta": {"content": content},
                     "finish_reason": finish_reason}]}) + "\n\n"
                yield "data: [DONE]\n\n"
            return events()
        choice = ({"index": 0, "text": content} if completion else
                  {"index": 0, "message": {"role": "assistant", "content": content}})
        return SimpleNamespace(model_dump=lambda exclude_unset=False: {
            "choices": [{**choice, "finish_reason": finish_reason}]})

    async def collect():
        server = LLMServer("m", SimpleNamespace(stream_batching_interval_ms=0), ["m"])
        return [item async for item in server._run(
            create, SimpleNamespace(), "messages",
            checks=answer_checks(json_answer=json_answer, **kwargs))]
    return [item["result"] if isinstance(item, dict) else item for item in asyncio.run(collect())]


def test_a_whole_json_answer_loses_its_fence():
    [body] = run(f"```json\n{OBJ}\n```")
    assert body["choices"][0]["message"]["content"] == OBJ
    [body] = run(f"```json\n{OBJ}\n```", json_answer=False)  # not a JSON answer: as sent
    assert body["choices"][0]["message"]["content"] == f"```json\n{OBJ}\n```"
    [body] = run(f"```json\n{OBJ}\n```", completion=True)
    assert body["choices"][0]["text"] == OBJ


def test_the_fence_goes_before_the_grounding_and_citation_checks():
    sources = ["[1] Report\nSites recycle most water.", "[2] Ostbridge\nThe rate is 91%."]
    [body] = run(f"```json\n{OBJ}\n```", citation_sources=sources,
                 grounding=(sources, NO_CONTEXT))
    choice = body["choices"][0]
    assert choice["message"]["content"] == OBJ.replace("[1]", "[2]")
    assert choice["grounding"] == "passed"


def test_a_json_answer_cut_at_max_tokens_says_length():
    [body] = run("{\n\n\n\n\n\n\n\n", finish_reason="length")
    assert body["choices"][0] == {"index": 0, "finish_reason": "length", "message": {
        "role": "assistant", "content": "{\n\n\n\n\n\n\n\n"}}


def test_a_stream_is_never_rewritten():
    items = run(f"```json\n{OBJ}\n```", stream=True)
    event = json.loads(items[0].split("\n\n")[0][len("data: "):])
    assert event["choices"][0]["delta"]["content"] == f"```json\n{OBJ}\n```"


def test_json_answers_follow_the_effective_format():
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    def request(**body):
        return ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}],
                                     **body)

    assert not json_answers(request(), None)
    assert not json_answers(request(response_format={"type": "text"}), RoutePrompt())
    assert json_answers(request(response_format={"type": "text"}),
                        RoutePrompt(answer_format="json"))
    assert json_answers(request(response_format={"type": "json_object"}), None)
    assert json_answers(request(response_format=JSON_SCHEMA), None)
    assert json_answers(request(structured_outputs={"json": SCHEMA}), None)
    assert not json_answers(request(structured_outputs={"regex": "[a-z]+"}), None)


def test_a_schema_that_sets_its_own_layout_keeps_it():
    from serving.route_settings import with_json_layout

    own = {"type": "object", "x-guidance": {"whitespace_flexible": True}}
    body = {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": own}}}
    assert with_json_layout(body) == body
    plain = {"response_format": {"type": "json_object"}}
    assert with_json_layout(plain) == plain


def test_the_layout_admits_the_natural_form_and_refuses_runaway_whitespace():
    """llguidance itself, with the schema as the ingress sends it (no engine needed)."""
    import json

    llguidance = pytest.importorskip("llguidance")
    from vllm.v1.structured_output.backend_guidance import serialize_guidance_grammar
    from vllm.v1.structured_output.request import StructuredOutputOptions

    grammar = serialize_guidance_grammar(StructuredOutputOptions.JSON,
                                         json.dumps({**SCHEMA, "x-guidance": JSON_LAYOUT}),
                                         disable_any_whitespace=True)
    assert llguidance.LLMatcher.validate_grammar(grammar) == ""
    matcher = llguidance.LLMatcher(llguidance.LLTokenizer(
        llguidance.TokenizerWrapper(_ByteTokenizer())), grammar)
    natural = '{"answer": "14 March 2011 [1]", "confidence": "high"}'
    assert all(matcher.consume_token(b) for b in natural.encode()) and not matcher.is_error()
    runaway = llguidance.LLMatcher(llguidance.LLTokenizer(
        llguidance.TokenizerWrapper(_ByteTokenizer())), grammar)
    assert not all(runaway.consume_token(b) for b in b'{"answer":   \n\n')


class _ByteTokenizer:
    """One token per byte (256 tokens + end of text), enough for llguidance's matcher."""

    eos_token_id = 256
    bos_token_id = None
    tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]
    special_token_ids = [256]

    def __call__(self, text):
        return list(text.encode())
