"""The shipped sample knowledge base and its question set stay consistent."""

import json
import re
from pathlib import Path

KB = Path(__file__).resolve().parents[2] / "evaluation" / "samples" / "helix"


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s€]", " ", text.lower()).split())


def load(name):
    return [json.loads(line) for line in (KB / name).read_text().splitlines() if line.strip()]


def test_questions_are_well_formed_and_grounded():
    docs = {p.stem: norm(p.read_text()) for p in (KB / "docs").glob("*.md")}
    assert len(docs) >= 12
    questions, prompts = load("questions.jsonl"), load("format_prompts.jsonl")
    assert len(questions) >= 40 and len(prompts) >= 10
    ids = [q["id"] for q in questions + prompts]
    assert len(ids) == len(set(ids))
    kinds = {q["kind"] for q in questions}
    assert kinds == {"single", "multi", "unanswerable"}
    for q in questions + prompts:
        if q.get("kind") == "unanswerable":
            assert q["answer"] == "" and q["doc_ids"] == [], q["id"]
            continue
        assert q["doc_ids"] and set(q["doc_ids"]) <= set(docs), q["id"]
        forms = [norm(a) for a in [q["answer"], *q["aliases"]]]
        assert any(f in docs[d] for f in forms for d in q["doc_ids"]), q["id"]
