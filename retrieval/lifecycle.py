"""A document's lifecycle status, read from its own opening: draft, superseded, or neither.

Enterprise knowledge bases keep old versions and drafts next to the documents in force
("Travel Policy (2023)" beside "Travel Policy"). They share most of their words, so
retrieval ranks them side by side and a small reader copies the old figure. Such
documents usually say what they are at the top: a banner under the title
("**SUPERSEDED. This version was replaced on 1 February 2024 ...**", "Status: DRAFT ...
Not approved") or a title ending in "- DRAFT". `document_status` reads the title and
the lead (the text before the first heading after the title, or the first paragraph;
at most LEAD_CHARS; headings as the chunker finds them in markdown, reStructuredText,
AsciiDoc or sniffed text) sentence by sentence:

- a sentence that says the document is in force ("This policy is current", "is in
  force", "Final edition", "approved on/by") makes it current, whatever else is said;
- else a title starting or ending with the word "draft", or a sentence starting "Draft" or saying "not
  approved" / "Status: draft", makes it a draft;
- else a sentence saying it was superseded, replaced, withdrawn, archived or is kept for
  reference only makes it superseded.

A sentence about another document ("It supersedes the 2023 policy, which no longer
applies", "This catalogue replaces the draft price list") is skipped: the current
document names the one it replaces. Text further down never counts, so a chapter on
"archived records" does not retire a policy.

The status is stored as the document's `metadata.status` at ingestion (unless the
document brings its own), where searches and filters see it; routes leave
`retrieval.exclude_status` documents out of their sources.
"""

from __future__ import annotations

import re

from retrieval.chunker import headings

__all__ = ["STATUSES", "LEAD_CHARS", "lead", "document_status"]

DRAFT, SUPERSEDED = "draft", "superseded"
STATUSES = (DRAFT, SUPERSEDED)
LEAD_CHARS = 600

_SENTENCE_RE = re.compile(r"(?<=[.!?;])\s+|\n+")
_MARKUP_RE = re.compile(r"[*_>`]+")

# About another document: the current one naming what it replaces.
_OTHER_RE = re.compile(r"\b(?:supersedes|replaces|replacing|superseding)\s+(?!this\b)", re.I)
_CURRENT_RE = re.compile(
    r"\b(?:is|are|remains?)\s+(?:now\s+)?(?:current|in\s+force|valid|in\s+effect)\b"
    r"|\bfinal\s+(?:edition|version)\b|(?<!not\s)(?<!yet\s)\bapproved\s+(?:on|by)\b",
    re.I)
_DRAFT_RE = re.compile(r"^\W*draft\b|\bnot\s+(?:yet\s+)?approved\b|\bstatus:?\s*draft\b", re.I)
_SUPERSEDED_RE = re.compile(
    r"\bsuperseded\b|\b(?:was|were|has\s+been|have\s+been|is\s+being)\s+replaced\b"
    r"|\breplaces\s+this\b|\bkept\s+for\s+reference\b|\bno\s+longer\s+(?:in\s+force|valid|"
    r"in\s+effect|applies|apply|in\s+use)\b|\barchived\s+(?:copy|version|document)\b"
    r"|\b(?:is|was|has\s+been)\s+(?:withdrawn|obsolete|retired|revoked)\b", re.I)
_TITLE_DRAFT_RE = re.compile(r"^\W*draft\b|\bdraft\W*$", re.I)  # "Draft: ...", "... - DRAFT", "(draft)"


def lead(text: str, format: str = "markdown") -> tuple[str, str]:
    """(title, lead): the top-level heading opening the text (read as `format`, see
    `chunker.headings`) and the text after it up to the next heading, or without such a
    heading the first paragraph before any heading; the lead at most LEAD_CHARS."""
    found = headings(text, format)
    title, start = "", 0
    if found and found[0].level == 1 and not text[:found[0].start].strip():
        title, start, found = found[0].title, found[0].end, found[1:]
    body = text[start:found[0].start if found else len(text)].strip()
    if not title:
        body = re.split(r"\n[ \t]*\n", body, maxsplit=1)[0]
    return title, body[:LEAD_CHARS]


def document_status(text: str, title: str = "", format: str = "markdown") -> str | None:
    """"draft", "superseded", or None (in force, or nothing said) for a document."""
    heading, body = lead(text, format)
    sentences = [_MARKUP_RE.sub("", s).strip() for s in _SENTENCE_RE.split(body)]
    own = [s for s in sentences if s and not _OTHER_RE.search(s)]
    if any(_CURRENT_RE.search(s) for s in own):
        return None
    if any(_TITLE_DRAFT_RE.search(t) for t in (heading, title) if t) or any(
            _DRAFT_RE.search(s) for s in own):
        return DRAFT
    if any(_SUPERSEDED_RE.search(s) for s in own):
        return SUPERSEDED
    return None
