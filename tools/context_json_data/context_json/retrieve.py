"""The route's retrieval and prompt (Renderer), and targets labelled from what
was retrieved."""

from __future__ import annotations

from pathlib import Path

from .answers import fill
from .model import Cand, Doc, Fact, occurs
from .org import OrgWriter
from .settings import CONFIG, IDK, MASK_EXTRA, MODEL, ROUTE


class Renderer:
    """The route's retrieval and prompt, exactly as the server builds them."""

    def __init__(self, work_dir: Path):
        from transformers import AutoTokenizer

        from lorag_core.model_source import resolve_model_source
        from retrieval.registry import IndexRegistry
        from serving import rag
        from serving.config import load_config

        self.rag = rag
        cfg = load_config(CONFIG)
        self.route = cfg.route(ROUTE)
        self.template = self.route.template
        self.settings = self.route.retrieval
        self.spec = cfg.indexes[self.settings.index].spec()
        self.registry = IndexRegistry(work_dir)
        self.tok = AutoTokenizer.from_pretrained(resolve_model_source(MODEL))

    def count(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, tokens: int) -> str:
        return self.tok.decode(self.tok(text, add_special_tokens=False)["input_ids"][:tokens])

    def index(self, name: str, docs: list[Doc]):
        from retrieval.knowledge_base import Document

        kb = self.registry.create(name, self.spec)
        kb.add_documents([Document(doc_id=d.doc_id, title=d.title, text=d.text,
                                   format="markdown", metadata={"source": f"{d.doc_id}.md"})
                          for d in docs])
        return kb

    def sources(self, kb, question: str, drop=None) -> list[dict]:
        """[{hit fields..., n, text (as rendered), truncated}] for a question, best first;
        `drop(hit)` true removes a hit before the top_k are taken (masked questions)."""
        top_k, excluded = self.settings.top_k, self.settings.exclude_status
        if drop is None:
            hits = kb.search(question, top_k=top_k, exclude_status=excluded)
        else:
            hits = kb.search(question, top_k=top_k + MASK_EXTRA, exclude_status=excluded)
            hits = [h for h in hits if not drop(h)][:top_k]
        hits = self.rag.usable_hits(hits, self.settings)
        cut: dict[int, str] = {}

        def truncate(text: str, tokens: int) -> str:
            cut[id(text)] = self.truncate(text, tokens)
            return cut[id(text)]
        fitted = self.rag.fit_sources(self.template, hits, self.settings.max_context_tokens,
                                      self.count, truncate)
        out = []
        for n, (hit, rendered) in enumerate(fitted, 1):
            text = hit["text"]
            truncated = rendered != self.rag.render_source(self.template, n, hit)
            if truncated:
                text = cut[id(hit["text"])]
            out.append({"n": n, "doc_id": hit["doc_id"], "chunk_id": hit["chunk_id"],
                        "title": hit["title"], "section": hit["section"], "text": text,
                        "score": round(float(hit["score"]), 6), "truncated": truncated,
                        "rendered": rendered})
        return out

    def messages(self, question: str, sources: list[dict]) -> list[dict]:
        return self.rag.build_messages(self.template, [{"role": "user", "content": question}],
                                       retrieval=True,
                                       sources=[s["rendered"] for s in sources])

    def length(self, messages: list[dict]) -> int:
        text = self.tok.apply_chat_template(messages, tokenize=False)
        return len(self.tok(text, add_special_tokens=False)["input_ids"])


def locate(fact: Fact, sources: list[dict]) -> int | None:
    """The first source from the fact's document that states it (and its link strings)."""
    for s in sources:
        if s["doc_id"] in fact.docs and occurs(fact.value, s["text"]) and \
                all(a in s["text"] for a in fact.also):
            return s["n"]
    return None


def label(org: OrgWriter, cand: Cand, sources: list[dict]) -> dict | None:
    """The example's target from what was retrieved; None to drop the candidate."""
    r = org.rng
    question, ref, facts = org.question_for(cand)
    if cand.kind == "unanswerable":
        return {"kind": "unanswerable", "question": question, "answer": IDK,
                "confidence": "low", "gold": []}
    where = [locate(f, sources) for f in facts]
    if cand.kind == "single":
        f, n = facts[0], where[0]
        if n is None:
            if any(occurs(f.value, s["text"]) for s in sources):
                return None  # the string is there, in another document: not a clean miss
            return {"kind": "miss", "question": question, "answer": IDK, "confidence": "low",
                    "gold": [], "missed": f.value}
        marker = f"[{n}]"
        if r.random() < 0.45:
            answer = f"{f.value} {marker}"
        else:
            answer = fill(f.sentence, f.value, marker, ref)
        return {"kind": "single", "question": question, "answer": answer, "confidence": "high",
                "gold": [{"value": f.value, "n": n}]}
    if None in where:
        return None  # a two-fact question with one fact missing: not a clean example
    markers = [f"[{n}]" for n in where]
    answer = cand.compose(facts, markers, ref, r)
    return {"kind": cand.kind, "question": question, "answer": answer, "confidence": "medium",
            "gold": [{"value": f.value, "n": n} for f, n in zip(facts, where)]}
