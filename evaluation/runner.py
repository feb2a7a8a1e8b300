"""The evaluation's client: a fresh index, then every question through every route.

Talks to a lorag server over HTTP only (the official `openai` client for chat,
httpx for the index API), so it measures what any client sees. A failed request
is recorded with its question; failing to set up the index is fatal (`EvalError`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai
from tqdm import tqdm

from serving.auth import client_headers

__all__ = ["UPLOAD_BATCH", "EvalError", "Route", "EvalClient", "run_bounded", "fresh_index",
           "select_routes", "reference_spec", "route_exclusions"]

logger = logging.getLogger("lorag.eval")

UPLOAD_BATCH = 16


class EvalError(RuntimeError):
    """The evaluation cannot run (server, index or corpus); the message says why."""


@dataclass(frozen=True)
class Route:
    """A route as GET /v1/models describes it (`lorag` details)."""

    name: str
    retrieval: dict[str, Any] | None
    adapter: str | None


def _message(err: Exception) -> str:
    if isinstance(err, openai.APIStatusError):
        body = err.body if isinstance(err.body, dict) else {}
        body = body.get("error", body) if isinstance(body.get("error"), dict) else body
        return f"{err.status_code}: {body.get('message') or err.message}"
    if isinstance(err, httpx.HTTPStatusError):
        try:
            detail = err.response.json()["error"]["message"]
        except Exception:
            detail = err.response.text[:300]
        return f"{err.response.status_code}: {detail}"
    return f"{type(err).__name__}: {err}"


class EvalClient:
    """One server: its routes, index admin, searches and chat requests."""

    def __init__(self, url: str, timeout_s: float = 600.0,
                 transport: httpx.AsyncBaseTransport | None = None):
        """`transport`: an httpx transport for both clients (tests pass a fake server)."""
        self.url = url.rstrip("/")
        headers = client_headers()  # $LORAG_API_KEY (an admin key: eval creates an index)
        self.http = httpx.AsyncClient(base_url=self.url, timeout=timeout_s, transport=transport,
                                      headers=headers)
        key = headers.get("Authorization", "Bearer unused").removeprefix("Bearer ")
        self.chat = openai.AsyncOpenAI(
            base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=timeout_s,
            http_client=httpx.AsyncClient(transport=transport, timeout=timeout_s)
            if transport is not None else None)

    async def close(self) -> None:
        await self.http.aclose()
        await self.chat.close()

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = await self.http.request(method, path, **kwargs)
            r.raise_for_status()
        except httpx.HTTPError as err:
            raise EvalError(f"{method} {path} failed: {_message(err)}") from None
        return r.json()

    # -- set-up ---------------------------------------------------------------------

    async def routes(self) -> dict[str, Route]:
        models = await self._json("GET", "/v1/models")
        return {m["id"]: Route(m["id"], m["lorag"].get("retrieval"), m["lorag"].get("adapter"))
                for m in models["data"] if (m.get("lorag") or {}).get("kind") == "route"}

    async def index_info(self, name: str) -> dict[str, Any]:
        return await self._json("GET", f"/v1/indexes/{name}")

    async def index_names(self) -> list[str]:
        return [d["name"] for d in (await self._json("GET", "/v1/indexes"))["data"]]

    async def create_index(self, name: str, spec: dict[str, Any]) -> None:
        await self._json("POST", "/v1/indexes", json={"name": name, **spec})

    async def upload(self, name: str, docs: list[dict[str, Any]]) -> None:
        with tqdm(total=len(docs), unit="doc", desc=f"ingest -> {name}", file=sys.stderr) as bar:
            for i in range(0, len(docs), UPLOAD_BATCH):
                batch = docs[i:i + UPLOAD_BATCH]
                await self._json("POST", f"/v1/indexes/{name}/documents",
                                 json={"documents": batch})
                bar.update(len(batch))

    async def delete_index(self, name: str) -> None:
        await self._json("DELETE", f"/v1/indexes/{name}")

    # -- measurements ---------------------------------------------------------------

    async def search(self, index: str, item: Any, k: int,
                     exclude_status: list[str] | None = None) -> dict[str, Any]:
        """The doc_ids of the top `k` chunks for the question (recall@k), leaving out
        documents by status as the routes do."""
        record: dict[str, Any] = {"id": item.id, "kind": item.kind, "doc_ids": item.doc_ids,
                                  "retrieved": None, "error": None}
        body: dict[str, Any] = {"query": item.question, "top_k": k}
        if exclude_status:
            body["exclude_status"] = exclude_status
        try:
            r = await self.http.post(f"/v1/indexes/{index}/search", json=body)
            r.raise_for_status()
            record["retrieved"] = [h["doc_id"] for h in r.json()["data"]]
        except httpx.HTTPError as err:
            record["error"] = _message(err)
        return record

    async def ask(self, route: Route, item: Any, *, index: str | None,
                  max_tokens: int | None) -> dict[str, Any]:
        """One answer: its text, the doc_ids of its `citations` (the chunks the route
        retrieved and put in the prompt; None without retrieval), latency, tokens; or
        the error."""
        kwargs: dict[str, Any] = {"temperature": 0}
        if max_tokens is not None:
            kwargs["max_tokens"] = max_tokens
        if index is not None and route.retrieval is not None:
            kwargs["extra_body"] = {"index": index}
        record: dict[str, Any] = {
            "route": route.name, "id": item.id, "kind": item.kind, "answer": None,
            "retrieved_doc_ids": None, "latency_s": None, "completion_tokens": None,
            "grounding": None, "error": None}
        started = time.perf_counter()
        try:
            resp = await self.chat.chat.completions.create(
                model=route.name, messages=[{"role": "user", "content": item.question}],
                **kwargs)
        except openai.APIError as err:
            record["error"] = _message(err)
            return record
        record["latency_s"] = round(time.perf_counter() - started, 4)
        record["answer"] = (resp.choices[0].message.content or "") if resp.choices else ""
        # "passed" / "replaced" where the route's grounding check ran (non-streamed answers)
        record["grounding"] = (resp.choices[0].model_extra or {}).get("grounding") \
            if resp.choices else None
        citations = (resp.model_extra or {}).get("citations")
        if citations is not None:
            record["retrieved_doc_ids"] = [c["doc_id"] for c in citations]
        record["completion_tokens"] = resp.usage.completion_tokens if resp.usage else None
        return record


async def run_bounded(jobs: list[Callable[[], Awaitable[Any]]], concurrency: int,
                      desc: str) -> list[Any]:
    """Run `jobs` with at most `concurrency` in flight, a progress bar on stderr;
    results in job order."""
    gate = asyncio.Semaphore(concurrency)
    with tqdm(total=len(jobs), desc=desc, unit="req", file=sys.stderr) as bar:
        async def one(job: Callable[[], Awaitable[Any]]) -> Any:
            async with gate:
                try:
                    return await job()
                finally:
                    bar.update(1)

        return list(await asyncio.gather(*(one(j) for j in jobs)))


@asynccontextmanager
async def fresh_index(client: EvalClient, name: str, spec: dict[str, Any],
                      docs: list[dict[str, Any]], *, keep: bool):
    """Create index `name`, upload `docs`, yield; delete it afterwards unless `keep`."""
    await client.create_index(name, spec)
    try:
        await client.upload(name, docs)
        yield name
    finally:
        if keep:
            logger.info("kept index %s", name)
        else:
            try:
                await client.delete_index(name)
            except EvalError as err:  # do not hide the error that got us here
                logger.warning("could not delete index %s: %s", name, err)


def select_routes(available: dict[str, Route], wanted: list[str] | None) -> list[Route]:
    """The routes to evaluate, in the order asked (all the server's by default)."""
    if not wanted:
        return list(available.values())
    unknown = [r for r in wanted if r not in available]
    if unknown:
        raise EvalError(f"unknown route(s) {', '.join(unknown)}; the server has "
                        f"{', '.join(available) or 'none'}")
    return [available[r] for r in wanted]


async def reference_spec(client: EvalClient, routes: list[Route],
                         config_indexes: dict[str, dict[str, Any]]) -> tuple[str | None, dict]:
    """The index the retrieval routes use and the spec a fresh copy needs: the
    server's own (GET /v1/indexes/<name> reports it), else the config's."""
    names = list(dict.fromkeys(r.retrieval["index"] for r in routes if r.retrieval))
    if not names:
        return None, {}
    if len(names) > 1:
        logger.warning("routes use several indexes (%s); the fresh index copies %s",
                       ", ".join(names), names[0])
    name = names[0]
    info = await client.index_info(name)
    spec = dict(info.get("spec") or config_indexes.get(name) or {})
    if not spec:
        logger.warning("index %s: no spec from the server or the config; defaults for the "
                       "fresh index", name)
    for key in ("type", "embedder") if not info.get("spec") else ():  # an older server
        if info.get(key) and spec.get(key) not in (None, info[key]):
            logger.warning("config says %s %s=%s, the server %s; using the server's",
                           name, key, spec[key], info[key])
        if info.get(key):
            spec[key] = info[key]
    return name, spec


def route_exclusions(routes: list[Route]) -> list[str]:
    """The document statuses the retrieval routes leave out of their sources (the first
    retrieval route's, warning when routes differ), for recall@k to search the same."""
    found = [list(r.retrieval.get("exclude_status") or []) for r in routes if r.retrieval]
    if any(f != found[0] for f in found[1:]):
        logger.warning("routes leave out different document statuses; recall@k leaves out "
                       "%s (the first retrieval route's)", found[0] or "none")
    return found[0] if found else []
