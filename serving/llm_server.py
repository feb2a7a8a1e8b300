"""One vLLM engine and vLLM's own OpenAI serving layer, as a plain object.

`LLMServer` is what an LLM deployment replica holds. It builds vLLM's
`AsyncLLM` through vLLM's own server code path (`build_async_engine_client`,
`init_app_state`), so chat templates, sampling parameters, `n`, `stop`,
`seed`, streaming, usage and context-length checks behave exactly as in
`vllm serve`.

Contract of `chat` / `completions`: an async generator whose first item is
either a reply (`serving.envelope`: the whole JSON response, or the client's error) or
the first SSE string; a streaming response continues with SSE strings ending in
``data: [DONE]``. What a route adds comes as a `serving.route_prompt.RoutePrompt`. Safe to call concurrently; the engine batches requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from typing import Any

from lorag_core.model_source import resolve_model_source
from serving.engine_args import engine_cli_args, has_cuda_device, parse_engine_args
from serving.lora import AdapterSlots
from serving.memory_plan import plan_memory
from serving.metrics import route_prompt_seconds
from serving.answer_checks import AnswerChecks, StreamChecks, check_whole_answer
from serving.envelope import failed, ok
from serving.errors import InvalidRequestError, from_vllm_error
from serving.model_config import ModelConfig
from serving.route_prompt import RoutePrompt
from serving.streaming import coalesce

__all__ = ["NO_ROUTE", "LLMServer", "prompt_tokens", "route_checks", "json_answers",
           "rag_question"]

logger = logging.getLogger(__name__)

NO_ROUTE = RoutePrompt()  # a request that names an adapter, or a route without a prompt


class LLMServer:
    """Wraps vLLM's engine client and serving objects for one base model.

    >>> server = LLMServer("smollm2", cfg.models["smollm2"], served_names=["base"])
    >>> await server.start()
    >>> async for item in server.chat(request): ...
    """

    def __init__(self, model_key: str, config: ModelConfig, served_names: list[str]):
        self.model_key = model_key
        self.config = config
        self.served_names = list(served_names)
        self._stack = AsyncExitStack()
        self.engine = None
        self._chat = None
        self._completion = None
        self.adapters: AdapterSlots | None = None
        self.max_model_len: int | None = None
        self._watchdog = None

    async def start(self) -> None:
        from starlette.datastructures import State
        from vllm.entrypoints.launchers.api_server.app_state import init_app_state
        from vllm.entrypoints.launchers.api_server.entry import build_async_engine_client

        model_path = await asyncio.to_thread(resolve_model_source, self.config.source)
        # On CPU: the KV cache from the memory free now (ModelDoesNotFitError when the
        # model cannot start; the replica fails with that message).
        plan = await asyncio.to_thread(
            lambda: plan_memory(self.config, model_path, on_gpu=has_cuda_device()))
        logger.info("%s: %s", self.model_key, plan.describe())
        args = parse_engine_args(engine_cli_args(self.config, model_path, self.served_names,
                                                 plan=plan))
        logger.info("starting vLLM engine for %s from %s", self.model_key, model_path)
        self.engine = await self._stack.enter_async_context(build_async_engine_client(args))
        state = State()
        tasks = await self.engine.get_supported_tasks()
        await init_app_state(self.engine, state, args, tasks)
        self._chat = state.openai_serving_chat
        self._completion = state.openai_serving_completion
        if self.config.engine.enable_lora:
            self.adapters = AdapterSlots(self.engine, state.openai_serving_models.lora_requests)
        self.max_model_len = self.engine.model_config.max_model_len
        # A replica killed outright cannot stop its engine's processes: this does.
        from serving.engine_watchdog import start_for_children

        self._watchdog = start_for_children()
        logger.info("vLLM engine for %s is ready", self.model_key)

    def close(self) -> None:
        """Synchronous shutdown (for destructors); safe to call more than once."""
        if self.engine is not None:
            self.engine.shutdown()
            self.engine = None
        if self._watchdog is not None:  # it exits once the engine's processes are gone
            try:
                self._watchdog.wait(timeout=10)
            except Exception:
                self._watchdog.kill()
            self._watchdog = None

    async def check_health(self) -> None:
        """Raises if the engine is dead (Ray Serve then restarts the replica)."""
        if self.engine is None:
            raise RuntimeError("engine not started")
        await self.engine.check_health()

    def chat(self, request: Any, prompt: RoutePrompt | None = None
             ) -> AsyncGenerator[dict | str, None]:
        """Chat completion; `prompt` (from the route) adds instructions and sources."""
        prompt = prompt or NO_ROUTE
        if prompt.max_prompt_tokens and (error := self.check_prompt_length(
                request.messages, "messages", prompt.max_prompt_tokens)) is not None:
            return _one(error)
        json_answer = json_answers(request, prompt)
        citations = None
        if prompt.template is None:
            checks = AnswerChecks(json_answer=json_answer)
        else:
            started = time.perf_counter()
            citations, sources = self.apply_route_prompt(request, prompt)
            route_prompt_seconds().labels(self.model_key).observe(
                time.perf_counter() - started)
            checks = route_checks(request, prompt, sources, json_answer)
        return self._run(self._chat.create_chat_completion, request, "messages", citations,
                         checks)

    def completions(self, request: Any, prompt: RoutePrompt | None = None
                    ) -> AsyncGenerator[dict | str, None]:
        prompt = prompt or NO_ROUTE
        if prompt.max_prompt_tokens and (error := self.check_prompt_length(
                request.prompt, "prompt", prompt.max_prompt_tokens)) is not None:
            return _one(error)
        return self._run(self._completion.create_completion, request, "prompt",
                         checks=AnswerChecks(json_answer=json_answers(request, prompt)))

    def check_prompt_length(self, prompt: Any, param: str, limit: int) -> dict | None:
        """The route's prompt cap: a failed reply when the client's prompt (messages as
        the chat template renders them, or each completion prompt) has more tokens."""
        count = prompt_tokens(self.engine.get_tokenizer(), prompt)
        if count <= limit:
            return None
        return failed(InvalidRequestError(
            f"The prompt is {count} tokens; this route accepts at most {limit}.",
            param=param, code="prompt_too_long"))

    def apply_route_prompt(self, request: Any, prompt: RoutePrompt
                           ) -> tuple[list[dict] | None, list[str]]:
        """Rewrite `request.messages` with the route's template; return the citations
        and the rendered sources.

        Sources are added in rank order while they fit in the smaller of the route's
        max_context_tokens and what max_model_len leaves after the conversation and
        the answer's max_tokens, counted with this model's tokenizer.
        """
        from serving import rag

        messages = list(request.messages)
        if not prompt.retrieval:  # a plain route with instructions
            request.messages = rag.build_messages(prompt.template, messages, retrieval=False)
            return None, []
        answer = (getattr(request, "max_completion_tokens", None) or request.max_tokens
                  or rag.DEFAULT_ANSWER_RESERVE)
        request.messages, chosen = rag.prepare_messages(
            self.engine.get_tokenizer(), prompt.template, messages, prompt.hits,
            max_context_tokens=prompt.max_context_tokens,
            max_model_len=self.max_model_len, answer_tokens=answer)
        citations = [rag.citation(n, prompt.index, hit) for n, (hit, _) in enumerate(chosen, 1)]
        return citations, [text for _, text in chosen]

    async def _run(self, create: Any, request: Any, prompt_param: str,
                   citations: list[dict] | None = None, checks: AnswerChecks = AnswerChecks()
                   ) -> AsyncGenerator[dict | str, None]:
        """Run one request through vLLM's serving layer and check its answer
        (`serving.answer_checks`: the same checks, in the same order, whole or streamed).

        A whole answer or an error is one reply (`serving.envelope`); a stream is relayed
        as it is made, its finishing chunks checked. Neither touches `finish_reason`: an
        answer cut at max_tokens (a JSON one still emitting whitespace, say) keeps vLLM's
        "length". `prompt_param` names the client's prompt in vLLM's context errors.
        """
        from vllm.entrypoints.serve.engine.protocol import ErrorResponse

        result = await _create(create, request)
        if isinstance(result, ErrorResponse):
            yield failed(from_vllm_error(result.model_dump()["error"], prompt_param))
        elif hasattr(result, "model_dump"):
            body = result.model_dump(exclude_unset=False)
            if citations is not None:
                body["citations"] = citations
            if checks.for_answers:
                check_whole_answer(body, checks)
            yield ok(body)
        else:
            from serving.rag import with_citations_first_event

            interval_s = self.config.stream_batching_interval_ms / 1000
            first = citations is not None
            stream_checks = StreamChecks(checks) if checks.for_streams else None
            async for chunk in coalesce(result, interval_s):
                if first:
                    chunk, first = with_citations_first_event(chunk, citations), False
                if stream_checks is not None:
                    chunk = stream_checks(chunk)
                yield chunk

    def metrics_text(self) -> str:
        """Prometheus text of this replica's engine metrics (vLLM's own)."""
        from prometheus_client import REGISTRY, generate_latest

        return generate_latest(REGISTRY).decode()


async def _one(item: dict) -> AsyncGenerator[dict | str, None]:
    yield item


async def _create(create: Any, request: Any) -> Any:
    """vLLM's answer to `request` from its serving method `create`: a response, a
    stream, or an ErrorResponse (also for the typed client errors vLLM raises)."""
    from vllm.entrypoints.serve.exception_handling.error_response import (
        create_error_response,
    )

    try:
        return await create(request, raw_request=None)
    except Exception as exc:  # vLLM raises its typed client errors for bad input
        result = create_error_response(exc)
        if result.error.code >= 500:
            logger.exception("request %s failed", getattr(request, "request_id", "?"))
        return result


def prompt_tokens(tokenizer: Any, prompt: Any) -> int:
    """Tokens of a chat conversation (rendered with the chat template) or of the longest
    completion prompt (text or token ids)."""
    if isinstance(prompt, str):
        return len(tokenizer.encode(prompt, add_special_tokens=False))
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], int):
        return len(prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(p, (str, list)) for p in prompt):
        return max(prompt_tokens(tokenizer, p) for p in prompt)
    messages = []
    for m in prompt or []:
        m = m if isinstance(m, dict) else getattr(m, "model_dump", lambda: dict(m))()
        content = m.get("content")
        if isinstance(content, list):  # content parts: count their text
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        messages.append({"role": str(m.get("role", "user")), "content": content or ""})
    try:
        ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers 5: a BatchEncoding
            ids = ids["input_ids"]
        return len(ids)
    except Exception:  # no chat template: the plain text
        return sum(len(tokenizer.encode(x["content"], add_special_tokens=False))
                   for x in messages)


def route_checks(request: Any, prompt: RoutePrompt, sources: list[str], json_answer: bool
                 ) -> AnswerChecks:
    """The checks a route's settings ask for, over the sources its prompt holds (the
    marker is never added to a JSON answer: " [n]" after a JSON value would break it)."""
    return AnswerChecks(
        grounding_texts=(sources + [rag_question(request)]
                         if prompt.check_grounding and prompt.retrieval else None),
        no_context_answer=prompt.template.no_context_answer if prompt.template else "",
        citation_sources=sources if prompt.fix_citations and prompt.retrieval else None,
        marker_sources=sources if prompt.add_markers and not json_answer else None,
        json_answer=json_answer)


def json_answers(request: Any, prompt: RoutePrompt | None) -> bool:
    """Whether a request's answer is JSON: its route declares answer_format json, or its
    effective response_format (its own, else the route's) is json_object / json_schema,
    or it asks vLLM's structured_outputs for JSON."""
    from serving.route_settings import is_json_format

    if prompt is not None and prompt.answer_format == "json":
        return True
    if is_json_format(getattr(request, "response_format", None)):
        return True
    outputs = getattr(request, "structured_outputs", None)
    return outputs is not None and (getattr(outputs, "json", None) is not None
                                    or bool(getattr(outputs, "json_object", None)))


def rag_question(request: Any) -> str:
    """The question of a rewritten retrieval request: its last user message (grounding
    accepts what the question itself states)."""
    from serving.rag import text_of

    for m in reversed(list(request.messages)):
        m = m if isinstance(m, dict) else getattr(m, "model_dump", lambda: dict(m))()
        if m.get("role") == "user":
            return text_of(m.get("content"))
    return ""
