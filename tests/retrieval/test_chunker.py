"""Chunker: sections, offsets, sizes and overlap."""

import pytest

from retrieval.chunker import ChunkingConfig, chunk_text, html_to_markdown

DOC = """# Guide

Intro paragraph about the guide. It has two sentences.

## Install

Run the installer. Then restart the machine. """ + "Long sentence number %d is here. " * 60 + """

## Use

Open the app.
"""


def test_offsets_point_into_the_text():
    for c in chunk_text("g", DOC, "Guide", ChunkingConfig(size=200, overlap=40)):
        assert DOC[c.start:c.end] == c.text
        assert c.doc_id == "g" and c.title == "Guide"


def test_sections_carry_heading_path_and_never_mix():
    chunks = chunk_text("g", DOC, "Guide", ChunkingConfig(size=200, overlap=40))
    sections = [c.section for c in chunks]
    assert "Guide" in sections and "Guide > Install" in sections and "Guide > Use" in sections
    for c in chunks:
        if c.section == "Guide > Use":
            assert "installer" not in c.text


def test_size_limit_and_overlap():
    cfg = ChunkingConfig(size=200, overlap=60)
    chunks = [c for c in chunk_text("g", DOC, "", cfg) if c.section == "Guide > Install"]
    assert len(chunks) > 3
    assert all(len(c.text) <= 200 for c in chunks)
    overlapping = sum(1 for a, b in zip(chunks, chunks[1:]) if b.start < a.end)
    assert overlapping >= len(chunks) - 2  # consecutive chunks share their boundary text


def test_indexes_are_sequential():
    chunks = chunk_text("g", DOC, "", ChunkingConfig(size=150, overlap=20))
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_plain_text_ignores_hash_lines():
    chunks = chunk_text("t", "# not a heading\n\nbody text", "", markdown=False)
    assert chunks[0].section == ""


def test_token_sized_chunks_need_a_counter():
    with pytest.raises(ValueError):
        chunk_text("t", "abc", "", ChunkingConfig(unit="tokens", size=20, overlap=2))
    words = " ".join(f"w{i}" for i in range(300))
    chunks = chunk_text("t", words, "", ChunkingConfig(unit="tokens", size=50, overlap=5),
                        count_tokens=lambda s: len(s.split()))
    assert all(len(c.text.split()) <= 50 for c in chunks)


def test_overlap_must_be_smaller_than_size():
    with pytest.raises(ValueError):
        ChunkingConfig(size=100, overlap=100)


def test_html_becomes_markdown_with_headings():
    text, title = html_to_markdown(
        "<html><head><title>T</title><style>x{}</style></head><body><h1>Top</h1>"
        "<p>One &amp; two.</p><h2>Sub</h2><p>Three.</p><script>evil()</script></body></html>")
    assert title == "T"
    assert "# Top" in text and "## Sub" in text and "One & two." in text
    assert "evil" not in text and "x{}" not in text


def test_a_heading_with_no_text_joins_the_next_section():
    doc = "# Annual Report\n\n## Summary\n\nRevenue rose to 4.2 million.\n\n## Staff\n\n31 people."
    chunks = chunk_text("r", doc, "", ChunkingConfig(size=200, overlap=20))
    assert [c.section for c in chunks] == ["Annual Report > Summary", "Annual Report > Staff"]
    assert chunks[0].text.startswith("# Annual Report\n\n## Summary") and chunks[0].start == 0
    assert all(doc[c.start:c.end] == c.text for c in chunks)
    # documents that are only headings still get one chunk
    assert [c.text.strip() for c in chunk_text("h", "# Only a title\n", "")] == ["# Only a title"]
    only = chunk_text("h", "# A\n\n## B\n", "")
    assert [(c.text.strip(), c.section) for c in only] == [("# A\n\n## B", "A > B")]
