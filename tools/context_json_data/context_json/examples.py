"""Organisations -> selected, labelled chat examples (single, two-fact,
unanswerable, retrieval misses and masked questions)."""

from __future__ import annotations

import json
import random
from collections import Counter

from .kinds import KINDS
from .model import Cand, occurs
from .org import OrgWriter
from .retrieve import Renderer, label
from .settings import IDK, MAX_EXAMPLE_TOKENS, MISS_RATE
from .vocabulary import INJECTIONS


def make_orgs(count: int, rng: random.Random, used: set[str]) -> list[OrgWriter]:
    kinds = []
    while len(kinds) < count:
        block = KINDS[:]
        rng.shuffle(block)
        kinds += block
    orgs = []
    for i in range(count):
        org = OrgWriter(random.Random(rng.randrange(2**32)), kinds[i], used)
        org.build()
        org.check_facts()
        org.make_candidates()
        orgs.append(org)
    return orgs


def select(org: OrgWriter, labelled: list[tuple[Cand, dict, list[dict]]], quota: dict
           ) -> list[tuple[Cand, dict, list[dict]]]:
    """Per organisation: a spread of single facts (distractor and injection cases first),
    two-fact answers, designed unanswerables and sometimes a retrieval miss."""
    r = org.rng
    groups: dict[str, list] = {"single": [], "two": [], "unanswerable": [], "miss": []}
    for item in labelled:
        kind = item[1]["kind"]
        groups["two" if kind in ("pair", "compare", "bridge", "change") else kind].append(item)
    for g in groups.values():
        r.shuffle(g)

    def injected(item):
        return any(is_injected(s["text"]) for s in item[2])

    def distracted(item):
        return "distractor" in item[0].tags or any("-draft" in s["doc_id"] or
                                                   "superseded" in s["text"].lower()
                                                   for s in item[2])
    singles = groups["single"]
    first = [x for x in singles if injected(x)][:3] + [x for x in singles if distracted(x)][:2]
    picked, seen_docs = [], Counter()
    for x in first + sorted(singles, key=lambda x: r.random()):
        if x in picked or len(picked) >= quota["single"]:
            continue
        doc = x[0].facts[0].docs[0]
        if seen_docs[doc] >= 2 and x not in first:
            continue
        picked.append(x)
        seen_docs[doc] += 1
    two = groups["two"]
    kinds_first = []
    for kind in ["bridge", "change", "compare", "pair"]:
        if kind == "change" and r.random() < 0.5:
            continue
        kinds_first += [x for x in two if x[1]["kind"] == kind][:1]
    r.shuffle(kinds_first)
    picked += (kinds_first + [x for x in two if x not in kinds_first])[:quota["two"]]
    un = groups["unanswerable"]
    special = [x for x in un if x[0].tags & {"superseded-only", "draft-only", "no-site"}]
    picked += (special[:1] + [x for x in un if x not in special[:1]])[:quota["unanswerable"]]
    if groups["miss"] and r.random() < MISS_RATE:
        picked += groups["miss"][:quota["miss"]]
    return picked


def masked(org: OrgWriter, renderer: Renderer, kb, quota: dict, stats: Counter
           ) -> list[tuple[Cand, dict, list[dict]]]:
    """Single facts asked of the index with every chunk that states the fact's value
    removed: the remaining top_k are the closest related chunks (the same document's
    other sections, sibling sites, old versions), none of which answers, so the target is
    "I don't know." The hard refusal case: related sources, no answer. Own random
    stream, so the other examples stay as they were."""
    r = random.Random(f"{org.name}:masked")
    singles = [c for c in org.cands if c.kind == "single"]
    r.shuffle(singles)
    out = []
    for cand in singles:
        if len(out) >= quota["masked"]:
            break
        fact = cand.facts[0]
        ref = org.name if r.random() < 0.55 else org.short
        question = org.phrase(fact.direct if r.random() < 0.5 else fact.para, ref)

        def states(hit: dict, value: str = fact.value) -> bool:
            return occurs(value, hit["text"]) > 0
        sources = renderer.sources(kb, question, drop=states)
        if not sources:
            stats["dropped: masked, no source above min_score"] += 1
            continue
        target = {"kind": "masked", "question": question, "answer": IDK, "confidence": "low",
                  "gold": [], "missed": fact.value}
        out.append((cand, target, sources))
    return out


def is_injected(text: str) -> bool:
    return any(inj.split(" ")[0] in text and inj[-25:] in text for inj in INJECTIONS)


def generate(orgs: list[OrgWriter], renderer: Renderer, prefix: str, quota: dict,
             stats: Counter) -> list[tuple[dict, dict]]:
    out = []
    for i, org in enumerate(orgs):
        kb = renderer.index(f"{prefix}{i:03d}", org.docs)
        labelled = []
        for cand in org.cands:
            # Phrase first, then search with the exact question the example will show.
            state = org.rng.getstate()
            question, _, _ = org.question_for(cand)
            org.rng.setstate(state)
            sources = renderer.sources(kb, question)
            if not sources:
                stats["dropped: no source above min_score"] += 1
                continue
            target = label(org, cand, sources)
            if target is None:
                stats["dropped: fact not cleanly retrieved (two-fact, or found elsewhere)"] += 1
                continue
            assert target["question"] == question
            labelled.append((cand, target, sources))
        picked = select(org, labelled, quota) + masked(org, renderer, kb, quota, stats)
        for cand, target, sources in picked:
            answer = json.dumps({"answer": target["answer"], "confidence": target["confidence"]},
                                ensure_ascii=False)
            messages = renderer.messages(target["question"], sources) + [
                {"role": "assistant", "content": answer}]
            tokens = renderer.length(messages)
            if tokens > MAX_EXAMPLE_TOKENS:
                stats["dropped: longer than 1024 tokens"] += 1
                continue
            meta = {"org": org.name, "kind": target["kind"], "tags": sorted(cand.tags),
                    "missed": target.get("missed"),
                    "question": target["question"], "gold": target["gold"], "tokens": tokens,
                    "injected": any(is_injected(s["text"]) for s in sources),
                    "sources": [{k: v for k, v in s.items() if k != "rendered"} for s in sources]}
            out.append(({"messages": messages}, meta))
            stats[f"kind: {target['kind']}"] += 1
    return out
