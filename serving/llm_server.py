"""One vLLM engine and vLLM's own OpenAI serving layer, as a plain object.

`LLMServer` is what an LLM deployment replica holds. It builds vLLM's
`AsyncLLM` through vLLM's own server code path (`build_async_engine_client`,
`init_app_state`), so chat templates, sampling parameters, `n`, `stop`,
`seed`, streaming, usage and context-length checks behave exactly as in
`vllm serve`.

Contract of `chat` / `completions`: an async generator whose first item is
either a dict (the whole JSON response, or ``{"error": {...}}``) or the first
SSE string; a streaming response continues with SSE strings ending in
``data: [DONE]``. Safe to call concurrently; the engine batches requests.
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
from serving.model_config import ModelConfig
from serving.streaming import coalesce

logger = logging.getLogger(__name__)


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

    def chat(self, request: Any, prompt: dict[str, Any] | None = None
             ) -> AsyncGenerator[dict | str, None]:
        """Chat completion; `prompt` (from the route) adds instructions and sources."""
        if (error := self.check_prompt_logprobs(request)) is not None:
            return _one(error)
        citations, marker_sources, grounding, citation_sources = None, None, None, None
        if prompt and prompt.get("max_prompt_tokens"):
            if (error := self.check_prompt_length(request.messages, "messages",
                                                  prompt["max_prompt_tokens"])) is not None:
                return _one(error)
        if prompt and "template" in prompt:
            started = time.perf_counter()
            citations, sources = self.apply_route_prompt(request, prompt)
            route_prompt_seconds().labels(self.model_key).observe(
                time.perf_counter() - started)
            marker_sources = sources if prompt.get("add_markers") else None
            if prompt.get("check_grounding") and citations is not None:
                grounding = (sources + [rag_question(request)],
                             prompt["template"]["no_context_answer"])
            if prompt.get("fix_citations") and citations is not None:
                citation_sources = sources
        json_answer = json_answers(request, prompt)
        if json_answer:
            marker_sources = None  # " [n]" after a JSON value would break it
        return self._run(self._chat.create_chat_completion, request, citations,
                         marker_sources, grounding, citation_sources, json_answer)

    def completions(self, request: Any, prompt: dict[str, Any] | None = None
                    ) -> AsyncGenerator[dict | str, None]:
        if (error := self.check_prompt_logprobs(request)) is not None:
            return _one(error)
        if prompt and prompt.get("max_prompt_tokens"):
            if (error := self.check_prompt_length(request.prompt, "prompt",
                                                  prompt["max_prompt_tokens"])) is not None:
                return _one(error)
        return self._run(self._completion.create_completion, request,
                         json_answer=json_answers(request, prompt))

    def check_prompt_logprobs(self, request: Any) -> dict | None:
        """An error item when the request asks for prompt log-probabilities and this
        engine serves LoRA (`serving.protocol.prompt_logprobs_error`)."""
        from serving.errors import error_to_wire
        from serving.protocol import prompt_logprobs_error

        err = prompt_logprobs_error(request, self.model_key, self.config.engine.enable_lora)
        return None if err is None else {"lorag_error": error_to_wire(err)}

    def check_prompt_length(self, prompt: Any, param: str, limit: int) -> dict | None:
        """The route's prompt cap: an error item when the client's prompt (messages as
        the chat template renders them, or each completion prompt) has more tokens."""
        from serving.errors import InvalidRequestError, error_to_wire

        count = prompt_tokens(self.engine.get_tokenizer(), prompt)
        if count <= limit:
            return None
        err = InvalidRequestError(
            f"The prompt is {count} tokens; this route accepts at most {limit}.",
            param=param, code="prompt_too_long")
        return {"lorag_error": error_to_wire(err)}

    def apply_route_prompt(self, request: Any, prompt: dict[str, Any]
                           ) -> tuple[list[dict] | None, list[str]]:
        """Rewrite `request.messages` with the route's template; return the citations
        and the rendered sources.

        Sources are added in rank order while they fit in the smaller of the route's
        max_context_tokens and what max_model_len leaves after the conversation and
        the answer's max_tokens, counted with this model's tokenizer.
        """
        from serving import rag
        from serving.route_settings import PromptTemplate

        template = PromptTemplate.model_validate(prompt["template"])
        messages = list(request.messages)
        hits = prompt.get("hits")
        if hits is None:  # a plain route with instructions
            request.messages = rag.build_messages(template, messages, retrieval=False)
            return None, []
        answer = (getattr(request, "max_completion_tokens", None) or request.max_tokens
                  or rag.DEFAULT_ANSWER_RESERVE)
        request.messages, chosen = rag.prepare_messages(
            self.engine.get_tokenizer(), template, messages, hits,
            max_context_tokens=prompt["max_context_tokens"],
            max_model_len=self.max_model_len, answer_tokens=answer)
        citations = [rag.citation(n, prompt["index"], hit)
                     for n, (hit, _) in enumerate(chosen, 1)]
        return citations, [text for _, text in chosen]

    async def _run(self, create: Any, request: Any, citations: list[dict] | None = None,
                   marker_sources: list[str] | None = None,
                   grounding: tuple[list[str], str] | None = None,
                   citation_sources: list[str] | None = None, json_answer: bool = False
                   ) -> AsyncGenerator[dict | str, None]:
        """Run one request through vLLM's serving layer and post-process its answer.

        A whole (non-streamed) answer: a JSON answer (`json_answer`) loses a Markdown code
        fence around it (`rag.unwrap_json_fence`), then grounding, citation fixing and
        markers apply to each choice. A stream is relayed as it is made and never
        rewritten: a JSON response_format (the engine's grammar) is what keeps a streamed
        JSON answer clean; only the checks on its finishing chunk apply. Neither touches
        `finish_reason`: an answer cut at max_tokens (a JSON one still emitting
        whitespace, say) keeps vLLM's "length".
        """
        from vllm.entrypoints.serve.engine.protocol import ErrorResponse

        result = await _create(create, request)
        if isinstance(result, ErrorResponse):
            yield result.model_dump()
        elif hasattr(result, "model_dump"):
            body = result.model_dump(exclude_unset=False)
            if citations is not None:
                body["citations"] = citations
            if json_answer:
                _unwrap_json_answers(body)
            if grounding or marker_sources or citation_sources:
                _check_answers(body, grounding, citation_sources, marker_sources)
            yield body
        else:
            from serving.rag import StreamChecks, with_citations_first_event

            interval_s = self.config.stream_batching_interval_ms / 1000
            first = citations is not None
            checks = (StreamChecks(marker_sources, grounding[0] if grounding else None)
                      if marker_sources or grounding else None)
            async for chunk in coalesce(result, interval_s):
                if first:
                    chunk, first = with_citations_first_event(chunk, citations), False
                if checks is not None:
                    chunk = checks(chunk)
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


def _unwrap_json_answers(body: dict[str, Any]) -> None:
    """A whole JSON answer: each choice loses a Markdown code fence around it."""
    from serving.rag import unwrap_json_fence

    for choice in body.get("choices", []):
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):  # chat
            message["content"] = unwrap_json_fence(message["content"])
        elif isinstance(choice.get("text"), str):  # completions
            choice["text"] = unwrap_json_fence(choice["text"])


def _check_answers(body: dict[str, Any], grounding: tuple[list[str], str] | None,
                   citation_sources: list[str] | None,
                   marker_sources: list[str] | None) -> None:
    """A whole chat answer, each choice in turn: the grounding check (an answer the
    sources do not support becomes the no-context text), then citation fixing, then
    markers."""
    from serving.rag import add_marker, fix_citations, grounded

    for choice in body.get("choices", []):
        message = choice.get("message") or {}
        if not isinstance(message.get("content"), str):
            continue
        if grounding:
            if not grounded(message["content"], grounding[0]):
                message["content"] = grounding[1]  # invented: say "don't know"
                choice["grounding"] = "replaced"
                continue
            choice["grounding"] = "passed"
        if citation_sources:
            message["content"] = fix_citations(message["content"], citation_sources)
        if marker_sources:
            message["content"] = add_marker(message["content"], marker_sources)


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


def json_answers(request: Any, prompt: dict[str, Any] | None) -> bool:
    """Whether a request's answer is JSON: its route declares answer_format json, or its
    effective response_format (its own, else the route's) is json_object / json_schema,
    or it asks vLLM's structured_outputs for JSON."""
    from serving.route_settings import is_json_format

    if prompt and prompt.get("answer_format") == "json":
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
