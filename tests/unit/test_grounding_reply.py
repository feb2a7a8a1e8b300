"""The LLM replica's grounding check on retrieval answers (no engine: a fake vLLM
`create` returns the answer, whole or as a stream of SSE events)."""

import asyncio
import json
from types import SimpleNamespace

from serving.llm_server import LLMServer, rag_question
from tests.support.answers import answer_checks

SOURCES = ["[1] Site A > Water\nThe recirculation rate is 91%."]
NO_CONTEXT = "I don't know. The documents I can search do not cover this."


def choice(content, **kwargs):
    async def create(request, raw_request=None):
        return SimpleNamespace(model_dump=lambda exclude_unset=False: {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})

    async def first():
        server = LLMServer("m", SimpleNamespace(), served_names=["m"])
        async for item in server._run(create, SimpleNamespace(), "messages", [{"number": 1}],
                                      answer_checks(**kwargs)):
            return item
    return asyncio.run(first())["result"]["choices"][0]


def reply(content, **kwargs):
    return choice(content, **kwargs)["message"]["content"]


def test_an_invented_figure_becomes_the_no_context_answer():
    assert reply("It is 94% [1].", grounding=(SOURCES, NO_CONTEXT)) == NO_CONTEXT
    # marker sources are not appended to the replacement
    assert reply("It is 94%.", marker_sources=SOURCES,
                 grounding=(SOURCES, NO_CONTEXT)) == NO_CONTEXT


def test_a_grounded_answer_is_kept_and_still_gets_its_marker():
    assert reply("It is 91% [1].", grounding=(SOURCES, NO_CONTEXT)) == "It is 91% [1]."
    assert reply("It is 91%.", marker_sources=SOURCES,
                 grounding=(SOURCES, NO_CONTEXT)) == "It is 91%. [1]"
    assert reply("It is 94%.") == "It is 94%."  # grounding off


def test_the_question_is_the_last_user_message():
    request = SimpleNamespace(messages=[{"role": "system", "content": "x"},
                                        {"role": "user", "content": "Sources: ... Q?"}])
    assert rag_question(request) == "Sources: ... Q?"


def test_a_citation_of_a_source_without_the_figure_is_repointed():
    sources = ["[1] Report\nSites recycle most water.", SOURCES[0].replace("[1]", "[2]")]
    assert reply("It is 91% [1].", citation_sources=sources) == "It is 91% [2]."
    assert reply("It is 91% [1].") == "It is 91% [1]."  # off
    # grounding first: an invented figure is replaced, not re-pointed
    assert reply("It is 94% [1].", grounding=(sources, NO_CONTEXT),
                 citation_sources=sources) == NO_CONTEXT


def test_each_checked_choice_says_whether_grounding_replaced_it():
    assert choice("It is 94% [1].", grounding=(SOURCES, NO_CONTEXT))["grounding"] == "replaced"
    assert choice("It is 91% [1].", grounding=(SOURCES, NO_CONTEXT))["grounding"] == "passed"
    assert "grounding" not in choice("It is 94%.")  # the check is off: nothing claimed


def streamed(parts, n_choices=1, **kwargs):
    """The events an LLMServer streams when the engine streams `parts` (text pieces, the
    last one finishing) to each of `n_choices` choices; the finishing choices."""
    async def engine():
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            yield "data: " + json.dumps({"choices": [
                {"index": c, "delta": {"content": part}, "finish_reason": "stop" if last
                 else None} for c in range(n_choices)]}) + "\n\n"
        yield "data: [DONE]\n\n"

    async def create(request, raw_request=None):
        return engine()

    async def collect():
        server = LLMServer("m", SimpleNamespace(stream_batching_interval_ms=0),
                           served_names=["m"])
        return [item async for item in server._run(create, SimpleNamespace(), "messages",
                                                   [{"number": 1}], answer_checks(**kwargs))]
    events = [e for item in asyncio.run(collect()) for e in item.split("\n\n")
              if e.startswith("data: {")]
    chunks = [json.loads(e[len("data: "):]) for e in events]
    assert chunks[0]["citations"] == [{"number": 1}]  # before the first token, as before
    text = "".join(c["delta"].get("content") or "" for ch in chunks for c in ch["choices"]
                   if c["index"] == 0)
    return text, [c for ch in chunks for c in ch["choices"] if c.get("finish_reason")]


def test_a_streamed_answer_says_on_its_last_chunk_whether_it_is_grounded():
    check = {"grounding": (SOURCES, NO_CONTEXT)}
    text, [last] = streamed(["It is ", "91%."], **check)
    assert (text, last["grounding"]) == ("It is 91%.", "passed")
    # an invented figure cannot be taken back once streamed: it is flagged, not replaced
    text, [last] = streamed(["It is ", "94%."], **check)
    assert (text, last["grounding"]) == ("It is 94%.", "failed")
    # with markers on, a grounded answer gets its marker and a failed one does not
    text, _ = streamed(["It is ", "91%."], marker_sources=SOURCES, **check)
    assert text == "It is 91%. [1]"
    text, _ = streamed(["It is ", "94%."], marker_sources=SOURCES, **check)
    assert text == "It is 94%."
    # every choice is checked on its own finishing chunk; the check off: nothing claimed
    _, finished = streamed(["It is ", "94%."], n_choices=2, **check)
    assert [c["grounding"] for c in finished] == ["failed", "failed"]
    _, [last] = streamed(["It is ", "94%."])
    assert "grounding" not in last


def test_a_stream_is_checked_in_the_order_a_whole_answer_is():
    """The same checks as a whole answer: a citation the whole answer would re-point is
    flagged on the stream (its text is sent), grounding first."""
    sources = ["[1] Report\nSites recycle most water.", SOURCES[0].replace("[1]", "[2]")]
    _, [last] = streamed(["It is 91% ", "[1]."], citation_sources=sources)
    assert last["citation_check"] == "mismatch"
    assert reply("It is 91% [1].", citation_sources=sources) == "It is 91% [2]."
    _, [last] = streamed(["It is 91% ", "[2]."], citation_sources=sources)
    assert "citation_check" not in last
    # an ungrounded answer is flagged for grounding only, as the whole one is replaced
    _, [last] = streamed(["It is 94% ", "[1]."], grounding=(sources, NO_CONTEXT),
                         citation_sources=sources)
    assert last["grounding"] == "failed" and "citation_check" not in last
