"""A retrieval route's sources for one request: search, rerank, further hops.

`RouteSources.find` is the ingress's retrieval step (docs/routes.md): it searches the
route's index (or the request's `index`), keeps the hits that pass the route's
`min_score` and status filter, reranks them when the route says so, and runs the
further hops of `retrieval.hops` (`serving.multihop`). The LLM replica then fits them
into the prompt (`serving.route_prompt.RoutePrompt`).
"""

from __future__ import annotations

import time
from typing import Any

from serving import multihop, rag
from serving.config import RouteConfig
from serving.envelope import unwrap
from serving.errors import InvalidRequestError
from serving.metrics import IngressMetrics

__all__ = ["RouteSources"]


class RouteSources:
    """`retriever`: the retriever deployment handle, called by value (Ray Serve's direct
    gRPC path) rather than through the object store: ~2 ms instead of ~5 ms a call on the
    2-core VM. Route searches are small; uploads keep the by-reference handle."""

    def __init__(self, retriever: Any, metrics: IngressMetrics):
        self._search = retriever.options(_by_reference=False)
        self.metrics = metrics

    async def find(self, route: RouteConfig, request: Any, index: str | None = None,
                   owner: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], str]:
        """The hits for `request` on `route` (empty: none passed min_score) and the index
        searched: `index` (the request's `index` field) or the route's. `owner`, the API
        key's filter, bounds every search (so a citation is never outside it)."""
        settings = route.retrieval
        query = rag.search_query(request.messages, settings.query_turns)
        if not query:
            raise InvalidRequestError("the conversation has no user text to search with.",
                                      param="messages", code="invalid_value")
        searched = index or settings.index
        t0 = time.perf_counter()
        fetch = settings.rerank.candidates if settings.rerank else settings.top_k
        reply = await self._search.call.remote("search", searched, query, fetch, None,
                                               settings.exclude_status, owner)
        retrieval_s = time.perf_counter() - t0
        if settings.hops == 1 or "error" in reply:  # with hops: observed after them
            # Labelled with the configured index: client-chosen names would grow the label set.
            self.metrics.retrieval.labels(route.name, settings.index).observe(retrieval_s)
        hits = rag.usable_hits(unwrap(reply), settings)  # an unknown index: 404 ("index")
        if settings.rerank and len(hits) > settings.top_k:
            t0 = time.perf_counter()
            reply = await self._search.call.remote("rerank", settings.rerank.model, query,
                                                   hits, settings.top_k)
            self.metrics.rerank.labels(route.name).observe(time.perf_counter() - t0)
            hits = unwrap(reply)
        if settings.hops > 1:  # the rerank above is not retrieval time
            t0 = time.perf_counter()
            hits = (await self._further_hops(query, searched, hits, settings, owner)
                    if hits else hits)
            self.metrics.retrieval.labels(route.name, settings.index).observe(
                retrieval_s + time.perf_counter() - t0)
        self.metrics.sources.labels(route.name).observe(len(hits))
        return hits, searched

    async def _further_hops(self, query: str, index: str, hits: list[dict[str, Any]],
                            settings: Any, owner: dict[str, Any] | None
                            ) -> list[dict[str, Any]]:
        """retrieval.hops > 1: `hits` after the further searches of serving.multihop."""
        async def search(q: str, k: int, flt: dict[str, Any] | None) -> list[dict[str, Any]]:
            return unwrap(await self._search.call.remote("search", index, q, k, flt,
                                                         settings.exclude_status, owner))

        hits, _ = await multihop.hop_sources(
            query, hits, search, hops=settings.hops, top_k=settings.top_k,
            hop_k=settings.hop_k, hop_terms=settings.hop_terms, min_score=settings.min_score)
        return hits
