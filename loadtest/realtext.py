"""Real public document sets for retrieval benchmarks, with questions derived by rule.

Each set is built from the files a Debian package installs (nothing is typed by hand,
nothing is fetched at run time): `apt-get install debian-faq debian-reference-en git-doc
postgresql-doc-15`. The rule that turns files into documents, questions and gold
documents is written in each builder's docstring; the package versions are recorded.

- debian-faq: every FAQ section whose heading is a question (ends in "?") gives that
  heading as the query and the section's body, without the heading, as the gold document.
  The FAQ's other sections and the Debian Reference's sections are the distractors. The
  pages' tables of contents are left out: they list the very questions.
- git: every manual page with a NAME line ("git-add - Add file contents to the index")
  gives the summary after " - " as the query and the page, without its NAME section, as
  the gold document; the other pages and guides are the distractors. The cmds-*.txt
  lists are left out: they are made of those very summary lines.
- postgresql: every reference page (refentry: SQL commands, client and server
  applications, SPI, ECPG and contrib pages) gives the purpose in its name line
  ("CREATE TABLE — define a new table") as the query and the page without that line as
  the gold document.

Documents are what a client would send: markdown (from the project's own HTML
conversion) or the installed text, with the project's title rules.

    sets = load_sets(["debian-faq", "git", "postgresql"])
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval.chunker import html_to_markdown

DOC_ROOT = Path("/usr/share/doc")


@dataclass
class Question:
    qid: str
    query: str
    gold: list[str]


@dataclass
class DocumentSet:
    name: str
    packages: dict[str, str]  # Debian package -> installed version
    rule: str
    documents: list[dict[str, Any]] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "packages": self.packages, "rule": self.rule,
                "documents": len(self.documents), "questions": len(self.questions),
                "characters": sum(len(d["text"]) for d in self.documents)}


class MissingPackage(RuntimeError):
    """A set's Debian package is not installed; the message names the install command."""


def package_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True, check=False)
    except FileNotFoundError:
        out = None
    if out is None or out.returncode != 0 or not out.stdout.strip():
        raise MissingPackage(f"Debian package {package} is not installed "
                             f"(apt-get install {package})")
    return out.stdout.strip()


_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)


def markdown_sections(markdown: str) -> list[tuple[str, str]]:
    """(heading, body) for each heading of a markdown text, body up to the next heading
    of any level (without its heading line); text before the first heading is left out."""
    marks = list(_MD_HEADING.finditer(markdown))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(markdown)
        out.append((m.group(2).strip(), markdown[m.end():end].strip()))
    return out


_TOC = re.compile(r'<div class="toc">.*?</div>', re.S)  # DocBook: no div nests inside
_NUMBER = re.compile(r"^(?:[A-Z]?\d+(?:\.\d+)*\.?)\s+")


def _question(heading: str) -> str | None:
    """A FAQ heading's question without its number ("1.2. What is X?" -> "What is X?")."""
    text = _NUMBER.sub("", heading).strip()
    return text if text.endswith("?") else None


def debian_faq(root: Path = DOC_ROOT) -> DocumentSet:
    """FAQ sections with a question heading: the question is the query, the section's
    body is its gold document; other FAQ sections and the Debian Reference's sections
    (each section of every chapter) are distractors. Sections with an empty body and the
    tables of contents (which list the questions) are left out. Document ids are
    numbered, so they carry no words of the question."""
    out = DocumentSet("debian-faq", {p: package_version(p)
                                     for p in ("debian-faq", "debian-reference-en")},
                      "FAQ question heading -> its section's body (heading removed); "
                      "other FAQ and Debian Reference sections are distractors")
    pages = sorted((root / "debian" / "FAQ").glob("*.en.html"))
    pages += sorted((root / "debian-reference-en" / "docs").glob("*.en.html"))
    if not pages:
        raise MissingPackage("no Debian FAQ pages (apt-get install debian-faq)")
    for page in pages:
        html = _TOC.sub("", page.read_text(encoding="utf-8", errors="replace"))
        markdown, _ = html_to_markdown(html)
        faq = page.parent.name == "FAQ"
        for heading, body in markdown_sections(markdown):
            if len(body) < 40:  # a table of contents entry or an empty heading
                continue
            doc_id = f"{'faq' if faq else 'ref'}-{len(out.documents) + 1:04d}"
            out.documents.append({"doc_id": doc_id, "text": body, "format": "markdown",
                                  "metadata": {"source": page.name}})
            query = _question(heading) if faq else None
            if query:
                out.questions.append(Question(f"q{len(out.questions) + 1:03d}", query, [doc_id]))
    return out


_GIT_NAME = re.compile(r"^NAME\n-{4}\n(?P<line>[^\n]+)\n+", re.M)


def git_docs(root: Path = DOC_ROOT) -> DocumentSet:
    """git's AsciiDoc sources (.txt): a page's NAME line "git-x - Summary" makes the
    summary the query and the page without its NAME section the gold document. The
    cmds-*.txt command lists (made of those summaries) are left out. Queries that two
    pages share are dropped (no single gold)."""
    folder = root / "git-doc"
    files = sorted(p for p in folder.glob("*.txt") if not p.name.startswith("cmds-"))
    if not files:
        raise MissingPackage("no git documentation (apt-get install git-doc)")
    out = DocumentSet("git", {"git-doc": package_version("git-doc")},
                      "manual page NAME summary -> the page without its NAME section; "
                      "other pages and guides are distractors")
    found: dict[str, list[str]] = {}
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        m = _GIT_NAME.search(text)
        if m and " - " in m.group("line"):
            found.setdefault(m.group("line").split(" - ", 1)[1].strip(), []).append(path.stem)
            text = text[:m.start()] + text[m.end():]
        out.documents.append({"doc_id": path.stem, "text": text, "format": "text",
                              "metadata": {"source": path.name}})
    for query, pages in sorted(found.items(), key=lambda kv: kv[1]):
        if len(pages) == 1:
            out.questions.append(Question(f"q{len(out.questions) + 1:03d}", query, pages))
    return out


_PG_NAMEDIV = re.compile(r'<div class="refnamediv">.*?</div>', re.S)
_PG_PURPOSE = re.compile(r"<p>(?P<name>.*?)\s+—\s+(?P<purpose>.*?)</p>", re.S)


def postgresql_reference(root: Path = DOC_ROOT) -> DocumentSet:
    """PostgreSQL's reference pages (HTML with a refnamediv: "CREATE TABLE — define a
    new table"): the purpose is the query, the page without its name block the gold
    document (uploaded as HTML: its <title> is the command's name)."""
    folder = root / "postgresql-doc-15" / "html"
    out = DocumentSet("postgresql", {"postgresql-doc-15": package_version("postgresql-doc-15")},
                      "reference page purpose line -> the page without its name block; "
                      "the other reference pages are distractors")
    found: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.html")):
        html = path.read_text(encoding="utf-8", errors="replace")
        block = _PG_NAMEDIV.search(html)
        if not block:
            continue
        m = _PG_PURPOSE.search(block.group(0))
        if m:
            purpose = re.sub(r"<[^>]+>", "", m.group("purpose"))
            found.setdefault(re.sub(r"\s+", " ", purpose).strip(), []).append(path.stem)
        out.documents.append({"doc_id": path.stem, "text": html[:block.start()] +
                              html[block.end():], "format": "html",
                              "metadata": {"source": path.name}})
    for query, pages in sorted(found.items(), key=lambda kv: kv[1]):
        if len(pages) == 1:
            out.questions.append(Question(f"q{len(out.questions) + 1:03d}", query, pages))
    if not out.documents:
        raise MissingPackage("no PostgreSQL reference pages (apt-get install postgresql-doc-15)")
    return out


BUILDERS = {"debian-faq": debian_faq, "git": git_docs, "postgresql": postgresql_reference}


def load_sets(names: list[str], root: Path = DOC_ROOT) -> list[DocumentSet]:
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise ValueError(f"unknown document sets {unknown}; known: {', '.join(BUILDERS)}")
    return [BUILDERS[n](root) for n in names]
