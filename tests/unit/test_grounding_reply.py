"""The LLM replica's grounding check on non-streamed retrieval answers (no engine: a
fake vLLM `create` returns the answer)."""

import asyncio
from types import SimpleNamespace

from serving.llm_server import LLMServer, rag_question

SOURCES = ["[1] Site A > Water\nThe recirculation rate is 91%."]
NO_CONTEXT = "I don't know. The documents I can search do not cover this."


def choice(content, **kwargs):
    async def create(request, raw_request=None):
        return SimpleNamespace(model_dump=lambda exclude_unset=False: {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})

    async def first():
        server = LLMServer("m", SimpleNamespace(), served_names=["m"])
        async for item in server._run(create, SimpleNamespace(), [{"number": 1}], **kwargs):
            return item
    return asyncio.run(first())["choices"][0]


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
