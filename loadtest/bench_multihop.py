"""Multi-hop retrieval on the sample sets, without an LLM: does a second search find the
second document of a multi-document question, and what does it cost the others?

    python -m loadtest.bench_multihop [--sets helix,northwind-ferries] [--samples DIR]
        [--config configs/default.yaml] [--index helix] [--top-k 4] [--min-score 0.2]
        [--hop-k 2] [--hop-terms 4] [--tokenizer SOURCE] [--cache DIR]
        [--out results/bench_multihop.json]

For each set (evaluation/samples/<set>: docs/ and questions.jsonl) an index is built as the
server builds a config index (the IndexSpec of --index in --config: chunks of 600
characters with 80 of overlap, dense search, all-MiniLM-L6-v2; retrieval.registry and
retrieval.files, the code the retriever replicas run). Every question is searched as a
route searches: top_k chunks, those below min_score dropped (serving.rag.usable_hits),
exclude_status from the route; then the further hops of serving.multihop.run_hops, the
steps the ingress takes for retrieval.hops > 1. Top_k, min_score, exclude_status, hop_k
and hop_terms come from the first route of --config that searches --index, unless given.

Variants: hops 1, 2 and 3 with the follow-up query of serving.multihop, and two controls
for hops 2: "question only" (the further search uses the question itself, among new
documents: is it the bridge terms that help, or only searching other documents?) and
"whole question + terms" (the question unshortened, then the bridge terms).

Per question kind (single, multi, unanswerable):
- all_gold: share of questions with every gold document among the sources;
- gold_recall: share of gold documents among the sources;
- answer_in_sources: share whose answer (or an alias) is written in a source's text
  (normalised as the evaluation scores answers);
- sources: mean chunks passing min_score (for unanswerable questions every one is noise
  the model may answer from), hop_chunks: mean chunks the further hops added;
- kept_gold: share of questions whose gold documents hops=1 found that the variant
  still finds.

Each figure twice: over every source retrieved, and over the sources the route's prompt
holds (serving.rag.prepare_messages with the route model's tokenizer, --tokenizer '' to
skip: max_context_tokens keeps sources in list order, so a further hop's chunks, listed
ahead of the first hop's weaker ones, can push those out).

Prints a table per set and for all, and writes JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "evaluation" / "samples"
DEFAULT_SETS = "helix,northwind-ferries"
KINDS = ("single", "multi", "unanswerable")


@dataclass(frozen=True)
class Variant:
    name: str
    hops: int
    follow_up: Callable[[str, list[dict[str, Any]], int], str | None] | None = None
    note: str = ""


def _question_only(question: str, sources: list[dict[str, Any]], terms: int) -> str:
    return question


def _whole_question(question: str, sources: list[dict[str, Any]], terms: int) -> str | None:
    from serving.multihop import follow_up_query

    return follow_up_query(question, sources, terms, whole_question=True)


def variants() -> list[Variant]:
    return [Variant("hops=1", 1, note="one search (retrieval.hops 1)"),
            Variant("hops=2", 2, note="serving.multihop.follow_up_query"),
            Variant("hops=3", 3, note="serving.multihop.follow_up_query, twice"),
            Variant("hops=2 question only", 2, _question_only,
                    note="control: the question again, among new documents"),
            Variant("hops=2 whole question + terms", 2, _whole_question,
                    note="control: the question unshortened, then the bridge terms")]


def load_set(folder: Path) -> tuple[list[dict[str, Any]], list[Any]]:
    """The documents of `folder`/docs as the server reads them, and the questions."""
    from evaluation.data import load_questions
    from retrieval.files import load_documents

    return load_documents([folder / "docs"]), load_questions(folder / "questions.jsonl")


def index_route(config: Any, index: str) -> Any | None:
    """The first route of `config` that searches `index`, if any."""
    return next((r for r in config.routes
                 if r.retrieval is not None and r.retrieval.index == index), None)


def prompt_fitter(config: Any, route: Any, tokenizer: Any
                  ) -> Callable[[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """`fit(question, hits)`: the hits the route's prompt holds for a one-message
    conversation (serving.rag.prepare_messages, as the LLM replica builds it: sources in
    list order while they fit max_context_tokens and max_model_len)."""
    from serving import rag

    max_model_len = config.models[route.model].engine.max_model_len or 2048
    answer = route.sampling.max_tokens or rag.DEFAULT_ANSWER_RESERVE

    def fit(question: str, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        _, chosen = rag.prepare_messages(
            tokenizer, route.template, [{"role": "user", "content": question}], hits,
            max_context_tokens=route.retrieval.max_context_tokens,
            max_model_len=max_model_len, answer_tokens=answer)
        return [h for h, _ in chosen]

    return fit


def load_tokenizer(source: str) -> Any:
    """The tokenizer of a model source (a builtin is prepared on first use)."""
    from transformers import AutoTokenizer

    from lorag_core.model_source import is_builtin, resolve_model_source

    return AutoTokenizer.from_pretrained(resolve_model_source(source),
                                         local_files_only=is_builtin(source))


def build_index(registry: Any, name: str, spec: Any, docs: list[dict[str, Any]]) -> Any:
    from retrieval.knowledge_base import Document

    kb = registry.create(name, spec)
    for i in range(0, len(docs), 64):
        kb.add_documents([Document.model_validate(d) for d in docs[i:i + 64]])
    return kb


def judge(item: Any, hits: list[dict[str, Any]], first_docs: set[str] | None = None
          ) -> dict[str, Any]:
    """One question's figures for the sources `hits`."""
    from evaluation.scoring import is_correct

    docs = [h["doc_id"] for h in hits]
    gold = set(item.doc_ids)
    out: dict[str, Any] = {"sources": len(hits),
                           "hop_chunks": sum(1 for h in hits if h.get("hop", 1) > 1)}
    if gold:
        out["all_gold"] = gold <= set(docs)
        out["gold_recall"] = len(gold & set(docs)) / len(gold)
        out["answer_in_sources"] = is_correct("\n".join(h["text"] for h in hits),
                                              item.answer, item.aliases)
        if first_docs is not None:
            out["kept_gold"] = (gold & first_docs) <= set(docs)
    return out


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


FIGURES = ("all_gold", "gold_recall", "answer_in_sources", "kept_gold", "sources",
           "hop_chunks")


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-kind means of the rows' figures: those of every source retrieved, and (under
    "prompt") those of the sources the route's prompt holds."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        entry: dict[str, Any] = {"questions": len(mine)}
        for where, target in (("retrieved", entry), ("prompt", {})):
            for key in FIGURES:
                values = [float(r[where][key]) for r in mine if key in r.get(where, {})]
                if values:
                    target[key] = _mean(values)
            if where == "prompt" and target:
                entry["prompt"] = target
        out[kind] = entry
    return out


def bench_set(name: str, kb: Any, questions: list[Any], settings: Any,
              chosen: list[Variant],
              prompt_fit: Callable[[str, list[dict[str, Any]]], list[dict[str, Any]]] | None
              = None) -> dict[str, Any]:
    """Every question of a set through every variant: per-question rows and per-kind
    means. `prompt_fit(question, hits)`: the hits the route's prompt holds."""
    from serving import rag
    from serving.multihop import run_hops

    exclude = list(settings.exclude_status)

    def search(query: str, k: int, filter: dict[str, Any] | None) -> list[dict[str, Any]]:
        return kb.search(query, k, filter, exclude)

    per_variant: dict[str, list[dict[str, Any]]] = {v.name: [] for v in chosen}
    searches = {v.name: 0 for v in chosen}
    start = time.perf_counter()
    for item in questions:
        first = rag.usable_hits(search(item.question, settings.top_k, None), settings)
        first_docs = {h["doc_id"] for h in first}
        for v in chosen:
            hits, queries = run_hops(item.question, first, search, hops=v.hops,
                                     top_k=settings.top_k, hop_k=settings.hop_k,
                                     hop_terms=settings.hop_terms,
                                     min_score=settings.min_score, follow_up=v.follow_up)
            searches[v.name] += 1 + len(queries)
            row = {"id": item.id, "kind": item.kind, "gold": list(item.doc_ids),
                   "docs": list(dict.fromkeys(h["doc_id"] for h in hits)),
                   "queries": queries, "retrieved": judge(item, hits, first_docs)}
            if prompt_fit is not None:
                row["prompt"] = judge(item, prompt_fit(item.question, hits), first_docs)
            per_variant[v.name].append(row)
    return {"set": name, "questions": len(questions),
            "seconds": round(time.perf_counter() - start, 1),
            "variants": {v.name: {"note": v.note, "hops": v.hops,
                                  "searches_per_question": round(
                                      searches[v.name] / max(len(questions), 1), 2),
                                  "by_kind": summarize(per_variant[v.name]),
                                  "per_question": per_variant[v.name]}
                         for v in chosen}}


def table(title: str, variants_out: dict[str, Any]) -> str:
    """A Markdown table: one row per variant; "a / b": a over every source retrieved, b
    over the sources the route's prompt holds ("-" when not measured)."""
    head = ("| variant | multi all gold docs | multi answer in sources | single all gold docs "
            "| single answer in sources | unanswerable sources | searches/q |")
    lines = [f"### {title}", "", head, "|" + "---|" * 7]

    def f(entry: dict[str, Any], key: str) -> str:
        a, b = entry.get(key), entry.get("prompt", {}).get(key)
        fmt = "{:.1f}" if key == "sources" else "{:.2f}"
        return " / ".join("-" if v is None else fmt.format(v) for v in (a, b))

    for name, out in variants_out.items():
        k = out["by_kind"]
        multi, single, un = k.get("multi", {}), k.get("single", {}), k.get("unanswerable", {})
        lines.append(f"| {name} | {f(multi, 'all_gold')} | {f(multi, 'answer_in_sources')} | "
                     f"{f(single, 'all_gold')} | {f(single, 'answer_in_sources')} | "
                     f"{f(un, 'sources')} | {out['searches_per_question']:.2f} |")
    lines.append("")
    return "\n".join(lines)


def combined(sets: list[dict[str, Any]]) -> dict[str, Any]:
    """Every set's questions together, per variant."""
    names = list(sets[0]["variants"]) if sets else []
    out = {}
    for name in names:
        rows = [r for s in sets for r in s["variants"][name]["per_question"]]
        n = sum(s["questions"] for s in sets)
        out[name] = {"by_kind": summarize(rows), "searches_per_question": round(
            sum(s["variants"][name]["searches_per_question"] * s["questions"]
                for s in sets) / max(n, 1), 2)}
    return out


def run(sets: list[str], config_path: str | Path, index: str, overrides: dict[str, Any],
        workdir: Path, embedder_factory: Callable[[str], Any] | None = None,
        tokenizer: Any = None, samples: Path = SAMPLES,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole benchmark: one index per set under `workdir`, every variant. With a
    `tokenizer` (the route model's), also the figures of the sources its prompt holds."""
    from retrieval.registry import IndexRegistry
    from serving.config import load_config
    from serving.route_settings import RetrievalSettings

    config = load_config(config_path)
    if index not in config.indexes:
        raise SystemExit(f"index {index!r} is not in {config_path} "
                         f"(known: {', '.join(config.indexes)})")
    spec = config.indexes[index].spec()
    route = index_route(config, index)
    settings = route.retrieval if route is not None else RetrievalSettings(index=index)
    settings = RetrievalSettings.model_validate({**settings.model_dump(),
                                                 **{k: v for k, v in overrides.items()
                                                    if v is not None}})
    fit = None
    if route is not None and tokenizer is not None:
        fit = prompt_fitter(config, route.model_copy(update={"retrieval": settings}),
                            tokenizer)
    chosen = variants()
    registry = IndexRegistry(workdir, **({"embedder_factory": embedder_factory}
                                         if embedder_factory else {}))
    result: dict[str, Any] = {
        "spec": spec.model_dump(mode="json"),
        "route": route.name if route is not None else None,
        "settings": {k: getattr(settings, k) for k in (
            "top_k", "min_score", "exclude_status", "hop_k", "hop_terms",
            "max_context_tokens")},
        "prompt_figures": fit is not None,
        "variants": {v.name: v.note for v in chosen}, "sets": []}
    try:
        for name in sets:
            docs, questions = load_set(samples / name)
            kb = build_index(registry, f"set{len(result['sets'])}", spec, docs)
            out = bench_set(name, kb, questions, settings, chosen, fit)
            result["sets"].append(out)
            log(table(f"{name} ({len(questions)} questions, {len(docs)} documents)",
                      out["variants"]))
    finally:
        registry.close()
    result["all"] = combined(result["sets"])
    log(table("all sets", result["all"]))
    return result


def _embedder_factory(cache: Path | None) -> Callable[[str], Any]:
    from loadtest.embedding_cache import CachedEmbedder, VectorCache
    from retrieval.embedder import Embedder

    def make(name: str) -> Any:
        return CachedEmbedder(Embedder(name), VectorCache.for_model(cache, name))

    return make


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=DEFAULT_SETS,
                        help="comma-separated folders of --samples")
    parser.add_argument("--samples", default=str(SAMPLES),
                        help="folder of sample sets (each with docs/ and questions.jsonl)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"))
    parser.add_argument("--index", default="helix",
                        help="the config index whose IndexSpec every set is built with")
    parser.add_argument("--top-k", type=int)
    parser.add_argument("--min-score", type=float)
    parser.add_argument("--hop-k", type=int)
    parser.add_argument("--hop-terms", type=int)
    parser.add_argument("--tokenizer", default=None,
                        help="model source whose tokenizer counts the prompt (default: the "
                        "route's model; '' for no prompt figures)")
    parser.add_argument("--cache", default="",
                        help="folder of chunk and query vectors kept between runs ('' for "
                        "none)")
    parser.add_argument("--out", default="results/bench_multihop.json")
    args = parser.parse_args(argv)
    samples = Path(args.samples)
    missing = [s for s in args.sets.split(",") if not (samples / s / "questions.jsonl").exists()]
    if missing:
        print(f"bench_multihop: no such sample set(s) {missing} under {samples}",
              file=sys.stderr)
        return 2
    cache = Path(args.cache) if args.cache else None
    overrides = {"top_k": args.top_k, "min_score": args.min_score, "hop_k": args.hop_k,
                 "hop_terms": args.hop_terms}
    with tempfile.TemporaryDirectory() as tmp:
        embedders: dict[str, Any] = {}
        make = _embedder_factory(cache)

        def factory(name: str) -> Any:
            if name not in embedders:
                embedders[name] = make(name)
            return embedders[name]

        tokenizer = None
        if args.tokenizer != "":
            from serving.config import load_config

            config = load_config(args.config)
            route = index_route(config, args.index)
            source = args.tokenizer or (config.models[route.model].source if route else None)
            if source:
                tokenizer = load_tokenizer(source)
        result = run(args.sets.split(","), args.config, args.index, overrides, Path(tmp),
                     factory, tokenizer, samples)
        for e in embedders.values():
            e.cache.save()
    result = {"command": "python -m loadtest.bench_multihop " + shlex.join(
        sys.argv[1:] if argv is None else argv), "date": time.strftime("%Y-%m-%d"), **result}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
