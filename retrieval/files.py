"""Documents from files: what `lorag ingest`, uploads, index seeding and `lorag eval` read.

A file becomes one document: doc_id = file stem, title = its HTML <title> or first
heading (the stem when it has neither), format from the suffix (.txt is `text`, whose
rst or AsciiDoc headings the chunker sniffs), metadata {"source": file name}.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePath
from typing import Any

from retrieval.chunker import document_title

__all__ = ["FORMATS", "SUFFIXES", "DocumentFileError", "find_files", "named_document",
           "file_document", "load_documents"]

FORMATS = {".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".adoc": "asciidoc",
           ".asciidoc": "asciidoc", ".txt": "text", ".html": "html", ".htm": "html"}
SUFFIXES = ", ".join(FORMATS)  # for messages: ".md, .markdown, .rst, ..."


class DocumentFileError(ValueError):
    """Files that cannot become documents; the message names them."""


def find_files(paths: list[str | Path]) -> list[Path]:
    """Supported files under `paths` (folders recursively, sorted); errors name the path."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in FORMATS)
        elif p.is_file():
            if p.suffix.lower() not in FORMATS:
                raise DocumentFileError(f"unsupported file type: {p} (use {SUFFIXES})")
            files.append(p)
        else:
            raise DocumentFileError(f"no such file or folder: {p}")
    dupes = sorted(s for s, n in Counter(f.stem for f in files).items() if n > 1)
    if dupes:
        raise DocumentFileError(f"several files map to the same doc_id: {', '.join(dupes)}")
    return files


def named_document(name: str, text: str) -> dict[str, Any]:
    """The document a file called `name` (suffix in FORMATS) holding `text` becomes."""
    path = PurePath(name)
    fmt = FORMATS[path.suffix.lower()]
    return {"doc_id": path.stem, "text": text, "title": document_title(text, fmt) or path.stem,
            "format": fmt, "metadata": {"source": path.name}}


def file_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DocumentFileError(f"{path} is not UTF-8 text") from None
    return named_document(path.name, text)


def load_documents(paths: list[str | Path]) -> list[dict[str, Any]]:
    return [file_document(f) for f in find_files(paths)]
