"""Prometheus metrics of the ingress, and merging with the engines' own metrics.

Each ingress replica counts its requests in its own registry; `GET /metrics`
returns those plus vLLM's engine metrics (`vllm:*`) fetched from one replica of
each LLM deployment. For cluster-wide totals across replicas, scrape Ray's
metrics export port on every node, which Ray Serve and vLLM also report to.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
RETRIEVAL_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class IngressMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

        self.retrieval = Histogram(
            "lorag_retrieval_duration_seconds", "RAG routes: time to retrieve the sources.",
            ("route", "index"), buckets=RETRIEVAL_BUCKETS, registry=self.registry,
        )
        self.sources = Histogram(
            "lorag_retrieval_sources", "RAG routes: chunks passing min_score per request.",
            ("route",), buckets=(0, 1, 2, 3, 4, 6, 8, 12, 16, 32), registry=self.registry,
        )
        self.no_context = Counter(
            "lorag_no_context_answers", "RAG routes: requests answered 'no context' because "
            "no chunk passed min_score.", ("route",), registry=self.registry,
        )

    def finished(self, route: str, endpoint: str, status: int, started: float) -> None:
        self.requests.labels(route, endpoint, str(status)).inc()
        self.latency.labels(route, endpoint).observe(time.perf_counter() - started)

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
