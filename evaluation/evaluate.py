"""One evaluation run against a server URL: set up, ask, score, assemble the result."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evaluation.data import KINDS, FormatPrompt, Question
from evaluation.metrics import retrieval_metrics, route_metrics, score_record
from evaluation.runner import (
    EvalClient,
    fresh_index,
    reference_spec,
    route_exclusions,
    run_bounded,
    select_routes,
)
from evaluation.scoring import refusal_phrases
from evaluation.stats import route_pairs
from serving.route_settings import DEFAULT_NO_CONTEXT


__all__ = ["EvalOptions", "default_index_name", "evaluate"]


@dataclass
class EvalOptions:
    """What `lorag eval` was asked to do (see `lorag eval --help`)."""

    corpus: Path
    questions: Path
    format_prompts: Path | None = None
    routes: list[str] | None = None
    k: int = 5
    concurrency: int = 4
    max_tokens: int | None = None
    timeout_s: float = 600.0
    keep_index: bool = False
    index_name: str | None = None
    # From the config: each index's spec (chunking is not in the index API) and each
    # route's no-context answer (not in GET /v1/models).
    config_indexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    no_context_answers: dict[str, str] = field(default_factory=dict)


def default_index_name() -> str:
    return f"eval-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


async def evaluate(url: str, opts: EvalOptions, questions: list[Question],
                   formats: list[FormatPrompt], docs: list[dict[str, Any]],
                   transport: Any = None) -> dict[str, Any]:
    """Ask every question through every route over a fresh index holding `docs`;
    raises EvalError when the server or the index cannot be set up. `transport`: see
    `EvalClient`."""
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.perf_counter()
    name = opts.index_name or default_index_name()
    client = EvalClient(url, opts.timeout_s, transport)
    try:
        routes = select_routes(await client.routes(), opts.routes)
        reference, spec = await reference_spec(client, routes, opts.config_indexes)
        async with fresh_index(client, name, spec, docs, keep=opts.keep_index):
            answerable = [q for q in questions if q.answerable]
            excluded = route_exclusions(routes)
            jobs = [lambda q=q: client.search(name, q, opts.k, excluded) for q in answerable]
            # Question-major order: every route progresses at the same pace.
            jobs += [lambda r=r, q=q: client.ask(r, q, index=name, max_tokens=opts.max_tokens)
                     for q in [*questions, *formats] for r in routes]
            results = await run_bounded(jobs, opts.concurrency, "eval")
    finally:
        await client.close()
    searches, answers = results[:len(answerable)], results[len(answerable):]
    retrieval = retrieval_metrics(searches, opts.k)
    items = {"question": {q.id: q for q in questions}, "format": {f.id: f for f in formats}}
    per_route: dict[str, Any] = {}
    for route in routes:
        refusals = refusal_phrases(opts.no_context_answers.get(route.name, DEFAULT_NO_CONTEXT))
        scored = [score_record(a, items["format" if a["kind"] == "format" else "question"]
                               [a["id"]], refusals)
                  for a in answers if a["route"] == route.name]
        qs = [r for r in scored if r["kind"] != "format"]
        fs = [r for r in scored if r["kind"] == "format"]
        per_route[route.name] = {"metrics": route_metrics(route, qs, fs, retrieval),
                                 "questions": qs, "format_prompts": fs}
    return {
        "config": {
            "url": url, "corpus": str(opts.corpus), "documents": len(docs),
            "questions": str(opts.questions),
            "question_counts": {k: sum(q.kind == k for q in questions) for k in KINDS},
            "format_prompts": str(opts.format_prompts) if opts.format_prompts else None,
            "format_prompts_count": len(formats),
            "routes": {r.name: asdict(r) for r in routes},
            "index": name, "index_kept": opts.keep_index, "reference_index": reference,
            "index_spec": spec, "k": opts.k, "concurrency": opts.concurrency,
            "max_tokens": opts.max_tokens, "temperature": 0, "started_at": started,
            "duration_s": round(time.perf_counter() - t0, 1),
        },
        "retrieval": {**retrieval, "exclude_status": excluded, "per_question": searches},
        "routes": per_route,
        "route_pairs": route_pairs(per_route),
    }
