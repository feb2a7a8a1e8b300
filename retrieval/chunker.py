"""Split documents into overlapping chunks that remember where they came from.

Markdown- and text-aware: a chunk never spans two sections (markdown headings,
or HTML h1-h6 once converted), prefers paragraph and then sentence boundaries,
and carries doc_id, title, the heading path of its section and character
offsets into the text it was cut from. Sizes are in characters or in tokens of
a given tokenizer.

Example::

    chunks = chunk_text("guide", "# Setup\\n\\nInstall it...", title="Guide",
                        ChunkingConfig(size=800, overlap=100))
    chunks[0].section, chunks[0].start, chunks[0].end
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ChunkingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str = Field(default="chars", pattern="^(chars|tokens)$",
                      description="Measure chunk size in characters or embedder tokens.")
    size: int = Field(default=800, ge=16, le=100_000, description="Largest chunk size.")
    overlap: int = Field(default=120, ge=0, description="Size repeated from the chunk before.")

    @model_validator(mode="after")
    def _overlap_smaller(self) -> ChunkingConfig:
        if self.overlap >= self.size:
            raise ValueError("overlap must be smaller than size")
        return self


@dataclass(frozen=True)
class Chunk:
    doc_id: str
    index: int
    text: str
    title: str
    section: str
    start: int
    end: int


_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_PARA_RE = re.compile(r"\n[ \t]*\n+")
_SENT_RE = re.compile(r"(?<=[.!?])\s+(?=\S)")


def _sections(text: str, markdown: bool) -> list[tuple[int, int, str]]:
    """(start, end, heading path) spans; a heading line starts a new section."""
    if not markdown:
        return [(0, len(text), "")]
    spans, path = [], []
    starts = [(m.start(), len(m.group(1)), m.group(2).strip()) for m in _HEADING_RE.finditer(text)]
    cursor, current = 0, ""
    for pos, level, heading in starts:
        if pos > cursor:
            spans.append((cursor, pos, current))
        path = path[: level - 1] + [heading]
        current = " > ".join(path)
        cursor = pos
    spans.append((cursor, len(text), current))
    spans = [s for s in spans if text[s[0]:s[1]].strip()]
    # A section holding nothing but its heading ("# Title" right before "## Summary")
    # would be a chunk with no content that still matches queries on the title: its
    # heading joins the next section's text instead (that section's path names it).
    merged: list[tuple[int, int, str]] = []
    pending = None
    for i, (start, end, path_) in enumerate(spans):
        if pending is not None:
            start, pending = pending, None
        if i < len(spans) - 1 and not _HEADING_RE.sub("", text[start:end]).strip():
            pending = start
            continue
        merged.append((start, end, path_))
    return merged


def _split(text: str, start: int, end: int, pattern: re.Pattern) -> list[tuple[int, int]]:
    pieces, cursor = [], start
    for m in pattern.finditer(text, start, end):
        pieces.append((cursor, m.start()))
        cursor = m.end()
    pieces.append((cursor, end))
    return [(a, b) for a, b in pieces if text[a:b].strip()]


def _atoms(text: str, start: int, end: int, size: int,
           measure: Callable[[str], int]) -> list[tuple[int, int]]:
    """Paragraphs, else sentences, else hard windows, each no larger than size."""
    out = []
    for a, b in _split(text, start, end, _PARA_RE):
        if measure(text[a:b]) <= size:
            out.append((a, b))
            continue
        for s, e in _split(text, a, b, _SENT_RE):
            if measure(text[s:e]) <= size:
                out.append((s, e))
            else:
                out.extend(_hard_windows(text, s, e, size, measure))
    return out


def _hard_windows(text: str, start: int, end: int, size: int,
                  measure: Callable[[str], int]) -> list[tuple[int, int]]:
    out, cursor = [], start
    while cursor < end:
        stop = min(end, cursor + max(1, size))
        while stop > cursor + 1 and measure(text[cursor:stop]) > size:
            stop = cursor + max(1, (stop - cursor) * 3 // 4)
        space = text.rfind(" ", cursor + 1, stop)
        if stop < end and space > cursor + (stop - cursor) // 2:
            stop = space
        out.append((cursor, stop))
        cursor = stop
    return out


def _pack(text: str, atoms: list[tuple[int, int]], size: int, overlap: int,
          measure: Callable[[str], int]) -> list[tuple[int, int]]:
    """Greedy packing of atoms into windows; each new window repeats trailing atoms."""
    windows: list[tuple[int, int]] = []
    i = 0
    while i < len(atoms):
        j = i
        while j + 1 < len(atoms) and measure(text[atoms[i][0]:atoms[j + 1][1]]) <= size:
            j += 1
        windows.append((atoms[i][0], atoms[j][1]))
        if j + 1 >= len(atoms):
            break
        k = j + 1  # next window starts after j, stepped back over <= overlap
        while k - 1 > i and measure(text[atoms[k - 1][0]:atoms[j][1]]) <= overlap and \
                measure(text[atoms[k - 1][0]:atoms[j + 1][1]]) <= size:
            k -= 1
        i = k
    return windows


def chunk_text(doc_id: str, text: str, title: str = "", config: ChunkingConfig | None = None,
               *, markdown: bool = True,
               count_tokens: Callable[[str], int] | None = None) -> list[Chunk]:
    """Chunk one document; offsets index into `text`."""
    config = config or ChunkingConfig()
    if config.unit == "tokens":
        if count_tokens is None:
            raise ValueError("token-sized chunks need a tokenizer")
        measure = count_tokens
    else:
        measure = len
    chunks: list[Chunk] = []
    for s_start, s_end, section in _sections(text, markdown):
        atoms = _atoms(text, s_start, s_end, config.size, measure)
        for a, b in _pack(text, atoms, config.size, config.overlap, measure):
            chunks.append(Chunk(doc_id, len(chunks), text[a:b], title, section, a, b))
    return chunks


class _HTMLToMarkdown(HTMLParser):
    _SKIP = {"script", "style", "head", "noscript", "template"}
    _BLOCK = {"p", "div", "li", "br", "tr", "section", "article", "table", "ul", "ol", "pre",
              "blockquote", "header", "footer", "main", "nav"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self.skip += 1
        if tag == "title":
            self._in_title = True
        if re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        if tag == "title":
            self._in_title = False
        if re.fullmatch(r"h[1-6]", tag) or tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data.strip()
        elif not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_markdown(html: str) -> tuple[str, str]:
    """(markdown-ish text, <title>) of an HTML page; headings become # lines."""
    parser = _HTMLToMarkdown()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    text = "\n".join(line.strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip(), parser.title
