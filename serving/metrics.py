"""Prometheus metrics of the ingress, and merging with the engines' own metrics.

Each ingress replica counts its requests in its own registry; `GET /metrics`
returns those plus vLLM's engine metrics (`vllm:*`) fetched from one replica of
each LLM deployment. For cluster-wide totals across replicas, scrape Ray's
metrics export port on every node, which Ray Serve and vLLM also report to.
"""

from __future__ import annotations

import functools

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from serving.streaming import DROP, rewrite_events

__all__ = ["LATENCY_BUCKETS", "RETRIEVAL_BUCKETS", "Generation", "force_usage",
           "usage_tokens", "usage_total", "grounding_verdicts", "UsageMeter",
           "IngressMetrics", "merge_prometheus_texts", "route_prompt_seconds"]

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
RETRIEVAL_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


@dataclass
class Generation:
    """The labels of one generation request, filled in as the ingress learns them.

    `route` is what the existing `lorag_requests` family has always used (the
    requested model once it resolved); `known` is the same but only ever a
    configured route or a registered adapter, `adapter` the adapter's name.
    """

    endpoint: str
    started: float
    route: str = "-"
    known: str = "-"
    adapter: str = ""
    strip_usage: bool = False
    key: Any = None  # the caller's ApiKey (serving.auth), charged for the tokens used
    deadline: float = float("inf")  # loop time by which the answer must be complete


def force_usage(request: Any) -> bool:
    """Ask the engine for the usage event of a stream the client did not ask it for
    (output tokens are counted from it); True when the relay must drop it again."""
    if not getattr(request, "stream", False):
        return False
    options = request.stream_options
    if options is not None and options.include_usage:
        return False
    from vllm.entrypoints.openai.chat_completion.protocol import StreamOptions

    request.stream_options = StreamOptions(include_usage=True)
    return True


def usage_tokens(body: dict) -> int:
    """Completion tokens of a whole (non-streaming) response."""
    usage = body.get("usage") or {}
    return int(usage.get("completion_tokens") or 0)


def usage_total(body: dict) -> int:
    """Prompt + completion tokens of a whole response (what rate limits count)."""
    usage = body.get("usage") or {}
    return int(usage.get("total_tokens") or 0) or (
        int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0))


def grounding_verdicts(body: Any) -> list[str]:
    """The grounding verdicts of a response or stream chunk's choices ("passed",
    "replaced", "failed"; none where the route runs no check)."""
    choices = body.get("choices") if isinstance(body, dict) else None
    return [c["grounding"] for c in choices or []
            if isinstance(c, dict) and isinstance(c.get("grounding"), str)]


class UsageMeter:
    """Reads completion tokens from the usage events of an SSE stream as it is relayed,
    and the grounding verdicts of its finishing chunks (`verdicts`).

    With `strip`, the usage-only event (``"choices": []``) is dropped: the client
    did not ask for it. Only events holding a ``"usage":`` or ``"grounding":`` key are
    parsed (`serving.streaming.rewrite_events`).
    """

    def __init__(self, strip: bool = False):
        self.strip = strip
        self.tokens = 0       # completion tokens
        self.total = 0        # prompt + completion tokens (rate limits)
        self.verdicts: list[str] = []

    def __call__(self, text: str) -> str:
        return rewrite_events(text, self._read, needles=('"usage":', '"grounding":'))

    def _read(self, body: dict[str, Any]) -> Any:
        """Record the event's usage and grounding verdicts; DROP the forced usage event."""
        self.verdicts += grounding_verdicts(body)
        usage = body.get("usage")
        if not usage:
            return False
        self.tokens = int(usage.get("completion_tokens") or self.tokens)  # cumulative
        self.total = int(usage.get("total_tokens") or 0) or (
            int(usage.get("prompt_tokens") or 0) + self.tokens)
        return DROP if self.strip and body.get("choices") == [] else False


class IngressMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # Created in this order, which is the order of GET /metrics.
        self._add_request_metrics()
        self._add_retrieval_metrics()
        self._add_generation_metrics()

    def _add_request_metrics(self) -> None:
        """Every request, by route and endpoint."""
        labels = ("route", "endpoint")
        self.requests = Counter(
            "lorag_requests", "Requests answered, by HTTP status.",
            (*labels, "status"), registry=self.registry,
        )
        self.latency = Histogram(
            "lorag_request_duration_seconds", "Time from request to last byte.",
            labels, buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.ttft = Histogram(
            "lorag_time_to_first_chunk_seconds", "Streaming: time to the first SSE chunk.",
            labels, buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.in_flight = Gauge(
            "lorag_requests_in_flight", "Requests being answered.", labels,
            registry=self.registry,
        )

    def _add_retrieval_metrics(self) -> None:
        """RAG routes: retrieval, reranking, sources, grounding, no-context answers."""
        self.retrieval = Histogram(
            "lorag_retrieval_duration_seconds", "RAG routes: time to retrieve the sources.",
            ("route", "index"), buckets=RETRIEVAL_BUCKETS, registry=self.registry,
        )
        self.rerank = Histogram(
            "lorag_rerank_duration_seconds", "Routes with retrieval.rerank: time the retriever "
            "takes to score the candidates.", ("route",),
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=self.registry,
        )
        self.sources = Histogram(
            "lorag_retrieval_sources", "RAG routes: chunks passing min_score per request.",
            ("route",), buckets=(0, 1, 2, 3, 4, 6, 8, 12, 16, 32), registry=self.registry,
        )
        self.grounding = Counter(
            "lorag_grounding_checks", "RAG routes with retrieval.check_grounding: answers "
            "checked, by verdict: passed; replaced (non-streamed: turned into the no-context "
            "answer); failed (streamed: sent, and flagged on its last chunk).",
            ("route", "verdict"), registry=self.registry,
        )
        self.no_context = Counter(
            "lorag_no_context_answers", "RAG routes: requests answered 'no context' because "
            "no chunk passed min_score.", ("route",), registry=self.registry,
        )

    def _add_generation_metrics(self) -> None:
        """Generation requests per route and adapter."""
        # Per route and adapter (what the load test and the Grafana dashboard plot).
        # `adapter` is the adapter's name ("" without one), never its version, so that
        # hot swaps do not grow the label set.
        by_adapter = ("route", "adapter")
        self.generations = Counter(
            "lorag_generation_requests", "Generation requests answered, by route, adapter "
            "and HTTP status.", (*by_adapter, "status"), registry=self.registry,
        )
        self.errors = Counter(
            "lorag_request_errors", "Generation requests answered with an error (status "
            ">= 400, or 499 when the client went away), by error code.",
            (*by_adapter, "code"), registry=self.registry,
        )
        self.first_token = Histogram(
            "lorag_time_to_first_token_seconds", "Time from request to the first token "
            "(streaming: the first SSE chunk; otherwise the whole answer).", by_adapter,
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.output_tokens = Counter(
            "lorag_output_tokens", "Completion tokens generated (from the engine's usage).",
            by_adapter, registry=self.registry,
        )
        self.queued = Gauge(
            "lorag_requests_queued", "Requests received and waiting for their first chunk "
            "(retrieval, adapter resolution, engine queue and prefill).", ("route",),
            registry=self.registry,
        )

    def finished(self, route: str, endpoint: str, status: int, started: float) -> None:
        self.requests.labels(route, endpoint, str(status)).inc()
        self.latency.labels(route, endpoint).observe(time.perf_counter() - started)

    def ended(self, gen: Generation, status: int, code: str | None = None,
              tokens: int = 0) -> None:
        """One generation request ended: the route metrics and the per-adapter ones."""
        self.finished(gen.route, gen.endpoint, status, gen.started)
        self.generations.labels(gen.known, gen.adapter, str(status)).inc()
        if status >= 400:
            self.errors.labels(gen.known, gen.adapter, code or str(status)).inc()
        if tokens:
            self.output_tokens.labels(gen.known, gen.adapter).inc(tokens)

    def render(self, engine_texts: Iterable[str] = ()) -> bytes:
        """This registry plus engine metric texts, merged family by family."""
        return merge_prometheus_texts([generate_latest(self.registry).decode(), *engine_texts])


def merge_prometheus_texts(texts: Iterable[str]) -> bytes:
    """Merge exposition texts so that no family is declared twice."""
    families: dict[str, object] = {}
    for text in texts:
        for fam in text_string_to_metric_families(text):
            if fam.name in families:
                seen = {(s.name, tuple(sorted(s.labels.items()))) for s in families[fam.name].samples}
                families[fam.name].samples.extend(
                    s for s in fam.samples if (s.name, tuple(sorted(s.labels.items()))) not in seen
                )
            else:
                families[fam.name] = fam

    class _Static:
        def collect(self):
            return list(families.values())

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Static())
    return generate_latest(registry)


@functools.lru_cache(maxsize=None)
def route_prompt_seconds() -> Histogram:
    """LLM replicas: time to build a route's prompt (template; for retrieval routes the
    sources fitted with the model's tokenizer). In the replica's default registry, which
    its `metrics_text` exports; with `lorag_retrieval_duration_seconds` it is what a
    retrieval route adds before the engine starts."""
    return Histogram("lorag_route_prompt_duration_seconds",
                     "Time an LLM replica spends building a route's prompt.", ("model",),
                     buckets=RETRIEVAL_BUCKETS)
