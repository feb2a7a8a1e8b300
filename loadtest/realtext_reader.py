"""An answer-quality set from real manuals, for `lorag eval`: questions and format prompts
whose gold answers are derived by rule, over git's and PostgreSQL's reference pages.

The retrieval sets of `loadtest.realtext` pair a page's one-line purpose with the page.
The purpose also names what the page documents, so it makes an answerable question:

- git: "Which git command is described as "Add file contents to the index"?" -> "git add"
  (alias "git-add"); gold document: the page without its NAME section.
- postgresql: "Which PostgreSQL command or program is described as "define a new
  table"?" -> "CREATE TABLE"; gold document: the page without its name block.

The corpus is every page of both sets (the others are distractors), written as the files
a client would upload. Questions are taken evenly over each set's sorted questions, half as
questions and half as format prompts, so no question is asked twice.

    python -m loadtest.realtext_reader --out /tmp/realtext --per-set 8
    lorag eval --config configs/qwen2.5-coder-0.5b-instruct.yaml \\
        --routes json,json-strict,hybrid,hybrid-strict --corpus /tmp/realtext/docs \\
        --questions /tmp/realtext/questions.jsonl \\
        --format-prompts /tmp/realtext/format_prompts.jsonl --out DIR
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from loadtest import realtext

_PG_NAME = re.compile(r'<div class="refnamediv">.*?<p>(?P<name>.*?)\s+—', re.S)
_EXTENSIONS = {"text": ".txt", "html": ".html", "markdown": ".md"}


def _git_item(question: realtext.Question) -> dict[str, Any] | None:
    page = question.gold[0]
    if not page.startswith("git-"):  # gitk, scalar: named otherwise
        return None
    return {"question": f'Which git command is described as "{question.query}"?',
            "answer": page.replace("-", " ", 1), "aliases": [page], "doc_ids": [page]}


def _pg_item(question: realtext.Question, root: Path) -> dict[str, Any] | None:
    page = question.gold[0]
    html = (root / "postgresql-doc-15" / "html" / f"{page}.html").read_text(
        encoding="utf-8", errors="replace")
    m = _PG_NAME.search(html)
    if not m:
        return None
    name = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", m.group("name"))).strip()
    return {"question": f'Which PostgreSQL command or program is described as '
                        f'"{question.query}"?',
            "answer": name, "aliases": [n for n in name.split(", ") if n != name],
            "doc_ids": [page]}


def _spread(items: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` items taken at even steps over the list (all of them if fewer)."""
    if len(items) <= count:
        return items
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def build(out: Path, per_set: int, root: Path = realtext.DOC_ROOT) -> dict[str, Any]:
    """Writes ``out/docs/``, ``questions.jsonl`` and ``format_prompts.jsonl``; returns
    a summary (packages, counts)."""
    sets = {"git": realtext.git_docs(root), "postgresql": realtext.postgresql_reference(root)}
    docs = out / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    questions: list[dict[str, Any]] = []
    formats: list[dict[str, Any]] = []
    for name, doc_set in sets.items():
        for doc in doc_set.documents:
            path = docs / f"{doc['doc_id']}{_EXTENSIONS[doc['format']]}"
            path.write_text(doc["text"], encoding="utf-8")
        items = [_git_item(q) if name == "git" else _pg_item(q, root)
                 for q in doc_set.questions]
        chosen = _spread([i for i in items if i], 2 * per_set)
        for n, item in enumerate(chosen):
            target = questions if n % 2 == 0 else formats
            prefix = "q" if target is questions else "f"
            target.append({"id": f"{name}-{prefix}{len(target) + 1:02d}",
                           **({"kind": "single"} if target is questions else {}), **item})
    for path, rows in ((out / "questions.jsonl", questions),
                       (out / "format_prompts.jsonl", formats)):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"packages": {k: v for s in sets.values() for k, v in s.packages.items()},
            "documents": sum(len(s.documents) for s in sets.values()),
            "questions": len(questions), "format_prompts": len(formats)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the set to")
    parser.add_argument("--per-set", type=int, default=8,
                        help="questions and format prompts taken from each manual (each)")
    args = parser.parse_args(argv)
    try:
        summary = build(args.out, args.per_set)
    except realtext.MissingPackage as err:
        parser.exit(2, f"{err}\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
