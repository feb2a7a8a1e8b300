"""Prompt log-probabilities are refused by the ingress for a model whose engine serves
LoRA (vLLM fails computing them there and the engine dies); vLLM's own request classes."""

from types import SimpleNamespace

import pytest
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.completion.protocol import CompletionRequest

from serving.errors import error_to_wire
from serving.protocol import prompt_logprobs_error

MESSAGES = [{"role": "user", "content": "hi"}]


def check(request_, enable_lora=True):
    err = prompt_logprobs_error(request_, "m", enable_lora)
    return None if err is None else error_to_wire(err)


@pytest.mark.parametrize("request_, param", [
    (ChatCompletionRequest(model="m", messages=MESSAGES, prompt_logprobs=0), "prompt_logprobs"),
    (ChatCompletionRequest(model="m", messages=MESSAGES, echo=True), "echo"),
    (CompletionRequest(model="m", prompt="hi", prompt_logprobs=2), "prompt_logprobs"),
    (CompletionRequest(model="m", prompt="hi", echo=True, logprobs=1), "echo"),
])
def test_refused_when_the_engine_serves_lora(request_, param):
    error = check(request_)
    assert (error["status"], error["param"], error["code"]) == (
        400, param, "unsupported_parameter")
    assert "LoRA" in error["message"]
    assert check(request_, enable_lora=False) is None


@pytest.mark.parametrize("request_", [
    ChatCompletionRequest(model="m", messages=MESSAGES, logprobs=True, top_logprobs=2),
    CompletionRequest(model="m", prompt="hi", echo=True),  # echo without logprobs
    CompletionRequest(model="m", prompt="hi", logprobs=2),
])
def test_other_logprobs_pass(request_):
    assert check(request_) is None


async def test_a_retrieval_route_refuses_before_it_searches():
    from serving.api import OpenAIService
    from serving.config import load_config
    from serving.errors import InvalidRequestError
    from tests.support.ingress import chat

    searched = []

    async def call(method, *args):
        searched.append(method)
        return {"result": []}

    retriever = SimpleNamespace(call=SimpleNamespace(remote=call))
    retriever.options = lambda **_: retriever
    svc = OpenAIService(load_config(), {"smollm2": SimpleNamespace()}, retriever, None)
    with pytest.raises(InvalidRequestError) as err:
        await chat(svc, model="rag", messages=MESSAGES, prompt_logprobs=1)
    assert (err.value.param, err.value.code) == ("prompt_logprobs", "unsupported_parameter")
    assert searched == []


async def test_a_request_naming_an_adapter_is_refused_before_the_engine_sees_it():
    from serving.api import OpenAIService
    from serving.config import load_config
    from serving.errors import InvalidRequestError
    from tests.support.ingress import FakeLLM, chat

    async def resolve(name):
        return {"name": name, "base_model": "smollm2", "served_id": f"{name}@1"}

    llm = FakeLLM()
    svc = OpenAIService(load_config(), {"smollm2": llm}, None,
                        SimpleNamespace(resolve=resolve))
    with pytest.raises(InvalidRequestError) as err:
        await chat(svc, model="support-tone", messages=MESSAGES, prompt_logprobs=1)
    assert (err.value.param, err.value.code) == ("prompt_logprobs", "unsupported_parameter")
    assert llm.prompts == []
    await chat(svc, model="support-tone", messages=MESSAGES)  # without: it is served
    assert llm.prompts == [None]
