"""Split documents into overlapping chunks that remember where they came from.

Structure-aware: a chunk never spans two sections (markdown headings, HTML h1-h6
once converted, reStructuredText titles, AsciiDoc headings; see `headings` for the
rules and for how plain text is sniffed), prefers paragraph and then sentence
boundaries, and carries doc_id, title, the heading path of its section and
character offsets into the text it was cut from. Sizes are in characters or in
tokens of a given tokenizer.

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


__all__ = ["ChunkingConfig", "Chunk", "Heading", "headings", "chunk_text",
           "html_to_markdown", "document_title"]


class ChunkingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str = Field(default="chars", pattern="^(chars|tokens)$",
                      description="Measure chunk size in characters or embedder tokens.")
    size: int = Field(default=800, ge=16, le=100_000,
                      description="Largest chunk size, in `unit`s.")
    overlap: int = Field(default=120, ge=0,
                         description="Size repeated from the chunk before, in `unit`s.")

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


@dataclass(frozen=True)
class Heading:
    """A section heading: its lines are text[start:end], adornments included."""

    start: int
    end: int
    level: int  # 1 = top
    title: str


_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_PARA_RE = re.compile(r"\n[ \t]*\n+")
_SENT_RE = re.compile(r"(?<=[.!?])\s+(?=\S)")

# A title line starts at the margin, holds a letter or digit and is no bullet item.
_TITLE_RE = re.compile(r"(?![-*+.\u2022]+[ \t])\S.*[^\W_].*")
_RST_ADORNMENT_RE = re.compile(r"([-=`:'\"~^_*+#<>])\1+[ \t]*")
_ADOC_UNDERLINE_RE = re.compile(r"([-=~^+])\1{2,}[ \t]*")
_ADOC_LEVELS = {"=": 1, "-": 2, "~": 3, "^": 4, "+": 5}
_ADOC_ONE_LINE_RE = re.compile(r"(={1,6})[ \t]+(?=.*[^\W_])(\S.*?)(?:[ \t]+=+)?[ \t]*")
_ADOC_FENCE_RE = re.compile(r"(?:--|([-=.*_+/])\1{3,})[ \t]*")
_ADOC_ATTRIBUTES_RE = re.compile(r"\[\[?[A-Za-z_][^\[\]]*\]\]?[ \t]*")  # [[anchor]], [source]
_ADOC_HINT_RE = re.compile(  # a one-line heading, [attributes], include::x[] or a lone +
    rf"^(?:={{1,6}}[ \t]+\S|{_ADOC_ATTRIBUTES_RE.pattern}$|[a-z]+::\S*\[.*\][ \t]*$"
    r"|\+[ \t]*$)", re.M)


def headings(text: str, format: str = "markdown") -> list[Heading]:
    """The section headings of a document, in order; `format` says how to read it.

    - markdown: `#` to `######` lines.
    - rst: a title line underlined, or overlined and underlined with the same line, by
      one of = - ` : ' " ~ ^ _ * + # < > repeated at least as long as the title;
      levels go by first appearance of each style, overlined apart from underlined
      (as docutils does).
    - asciidoc: `= Title`, `== Section` ... one-line headings, and two-line ones
      underlined with = - ~ ^ + (levels 1 to 5) within 2 characters of the title's
      length; delimited blocks (`----` listings, `====` examples ...) are skipped.
    - text: sniffed. A text with an AsciiDoc marker line (a one-line `= ` heading, an
      `[[anchor]]` or `[attribute list]` line, a block macro such as `include::x[]`, a
      lone `+` continuing a list item) is read as AsciiDoc, any other text as
      reStructuredText (Sphinx `_sources/*.txt` are rst, git's docs AsciiDoc). Plain
      prose has no such heading and stays one section; `#` lines are no headings.
    - anything else (html is converted to markdown first): no headings.

    Outside markdown, a title starts a block (it is first, after a blank line, right
    after another heading or, in AsciiDoc, after an attribute line), holds a letter or
    digit and is no bullet item; an underlined title starts at the margin. An
    adornment is one character repeated, with nothing else on its line. So table
    borders with gaps (`====  ====`), indented literal blocks, list items and a line
    of dashes under a paragraph, or under a line of a very different length, stay text.
    """
    if format == "markdown":
        return [Heading(m.start(), m.end(), len(m.group(1)), m.group(2).strip())
                for m in _HEADING_RE.finditer(text)]
    lines = _lines(text)
    if format == "rst":
        return _rst_headings(lines)
    if format == "asciidoc":
        return _asciidoc_headings(lines)
    if format == "text":
        return (_asciidoc_headings if _ADOC_HINT_RE.search(text) else _rst_headings)(lines)
    return []


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line) for each line of `text`, without line ends."""
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, line.rstrip("\r")))
        pos += len(line) + 1
    return out


def _block_start(lines: list[tuple[int, str]], i: int, after: int) -> bool:
    """Whether line i may start a block: it is the first, follows a blank line, or is
    line `after` (the one right after a heading)."""
    return i == 0 or i == after or not lines[i - 1][1].strip()


def _rst_headings(lines: list[tuple[int, str]]) -> list[Heading]:
    styles: dict[tuple[str, bool], int] = {}  # (character, overlined) -> level
    out: list[Heading] = []
    i, after = 0, -1  # after: the line right after the last heading
    while i < len(lines) - 1:
        line, below = lines[i][1].rstrip(), lines[i + 1][1].rstrip()
        span = 0
        if _block_start(lines, i, after):
            if _RST_ADORNMENT_RE.fullmatch(line) and i + 2 < len(lines) \
                    and lines[i + 2][1].rstrip() == line and len(below) <= len(line) \
                    and _TITLE_RE.fullmatch(below.strip()):
                span, style, title = 3, (line[0], True), below
            elif _RST_ADORNMENT_RE.fullmatch(below) and len(below) >= len(line) \
                    and _TITLE_RE.fullmatch(line):
                span, style, title = 2, (below[0], False), line
        if not span:
            i += 1
            continue
        level = styles.setdefault(style, len(styles) + 1)
        last = lines[i + span - 1]
        out.append(Heading(lines[i][0], last[0] + len(last[1]), level, title.strip()))
        i = after = i + span
    return out


def _asciidoc_headings(lines: list[tuple[int, str]]) -> list[Heading]:
    closing: dict[int, int] = {}  # fence line -> the next identical line, which closes it
    last: dict[str, int] = {}
    for j in range(len(lines) - 1, -1, -1):
        fence = lines[j][1].rstrip()
        if _ADOC_FENCE_RE.fullmatch(fence):
            closing[j] = last.get(fence, j)
            last[fence] = j
    out: list[Heading] = []
    i, after = 0, -1
    while i < len(lines):
        line = lines[i][1]
        start = _block_start(lines, i, after) or bool(
            _ADOC_ATTRIBUTES_RE.fullmatch(lines[i - 1][1]))
        one = _ADOC_ONE_LINE_RE.fullmatch(line) if start else None
        under = _ADOC_UNDERLINE_RE.fullmatch(lines[i + 1][1]) \
            if start and i + 1 < len(lines) else None
        if one:
            out.append(Heading(lines[i][0], lines[i][0] + len(line), len(one.group(1)),
                               one.group(2).strip()))
            i = after = i + 1
        elif under and _TITLE_RE.fullmatch(line.rstrip()) \
                and abs(len(under.group().rstrip()) - len(line.rstrip())) <= 2:
            end = lines[i + 1][0] + len(lines[i + 1][1])
            out.append(Heading(lines[i][0], end, _ADOC_LEVELS[under.group(1)], line.strip()))
            i = after = i + 2
        elif i in closing:  # a delimited block: skip to its end, if it has one
            i = closing[i] + 1
        else:
            i += 1
    return out


def _sections(text: str, format: str) -> list[tuple[int, int, str]]:
    """(start, end, heading path) spans; a heading starts a new section."""
    spans: list[tuple[int, int, int, str]] = []  # start, end of its heading, end, path
    path: list[str] = []
    cursor, body, current = 0, 0, ""
    for h in headings(text, format):
        if h.start > cursor:
            spans.append((cursor, body, h.start, current))
        path = path[: h.level - 1] + [h.title]
        current, cursor, body = " > ".join(path), h.start, h.end
    spans.append((cursor, body, len(text), current))
    spans = [s for s in spans if text[s[0]:s[2]].strip()]
    # A section holding nothing but its heading ("# Title" right before "## Summary")
    # would be a chunk with no content that still matches queries on the title: its
    # heading joins the next section's text instead (that section's path names it).
    merged: list[tuple[int, int, str]] = []
    pending = None
    for i, (start, body, end, path_) in enumerate(spans):
        if pending is not None:
            start, pending = pending, None
        if i < len(spans) - 1 and not text[body:end].strip():
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
               *, format: str = "markdown",
               count_tokens: Callable[[str], int] | None = None) -> list[Chunk]:
    """Chunk one document read as `format` (see `headings`); offsets index into `text`."""
    config = config or ChunkingConfig()
    if config.unit == "tokens":
        if count_tokens is None:
            raise ValueError("token-sized chunks need a tokenizer")
        measure = count_tokens
    else:
        measure = len
    chunks: list[Chunk] = []
    for s_start, s_end, section in _sections(text, format):
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


def document_title(text: str, format: str = "markdown") -> str:
    """An HTML page's <title>, else the document's first heading; "" if it has neither."""
    if format == "html":
        text, title = html_to_markdown(text)
        if title:
            return title
        format = "markdown"
    found = headings(text, format)
    return found[0].title if found else ""
