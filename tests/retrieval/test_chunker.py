"""Chunker: sections, offsets, sizes and overlap."""

import pytest

from retrieval.chunker import ChunkingConfig, chunk_text, headings, html_to_markdown

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
    chunks = chunk_text("t", "# not a heading\n\nbody text", "", format="text")
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


# -- reStructuredText, AsciiDoc and sniffed text -------------------------------------

RST = """=============
 User Guide
=============

Intro to the guide.

Install
=======

Run the installer.

From source
-----------

Build it yourself.

Use
===

Open the app.
"""

# The start of git's Documentation/git-add.txt (AsciiDoc saved as .txt), shortened.
GIT_ADD = """git-add(1)
==========

NAME
----
git-add - Add file contents to the index

SYNOPSIS
--------
[verse]
'git add' [--verbose | -v] [--dry-run | -n] [--force | -f] [--interactive | -i]
	  [--] [<pathspec>...]

DESCRIPTION
-----------
This command updates the index using the current content found in
the working tree, to prepare the content staged for the next commit.

OPTIONS
-------
<pathspec>...::
	Files to add content from.

EXAMPLES
--------
* Adds content from all `*.txt` files under `Documentation` directory
and its subdirectories:
+
------------
$ git add -A
------------
+
Note that the asterisk `*` is quoted from the shell in this example.

INTERACTIVE MODE
----------------
When the command enters the interactive mode, it shows the
output of the 'status' subcommand.

------------
Update>> -2
------------
"""

GIT_ADD_SECTIONS = ["git-add(1) > NAME", "git-add(1) > SYNOPSIS", "git-add(1) > DESCRIPTION",
                    "git-add(1) > OPTIONS", "git-add(1) > EXAMPLES",
                    "git-add(1) > INTERACTIVE MODE"]


def sections(text, fmt, size=400):
    chunks = chunk_text("d", text, "", ChunkingConfig(size=size, overlap=20), format=fmt)
    assert all(text[c.start:c.end] == c.text for c in chunks)
    return [c.section for c in chunks]


def test_rst_titles_underlined_and_overlined():
    chunks = chunk_text("g", RST, "", ChunkingConfig(size=400, overlap=20), format="rst")
    assert [c.section for c in chunks] == [
        "User Guide", "User Guide > Install", "User Guide > Install > From source",
        "User Guide > Use"]
    # The heading lines open their section's text, as "# Install" does in markdown, and
    # never trail the section before.
    assert chunks[0].text.startswith("=============\n User Guide\n=============\n\nIntro")
    assert chunks[1].text == "Install\n=======\n\nRun the installer."
    assert chunks[2].text == "From source\n-----------\n\nBuild it yourself."


def test_rst_levels_follow_the_first_appearance_of_each_style():
    doc = ("Chapter\n-------\n\nOne.\n\nPart\n====\n\nTwo.\n\n#####\nBoxed\n#####\n\nThree.\n\n"
           "Underlined\n##########\n\nFour.\n\nOther chapter\n-------------\n\nFive.\n")
    assert [(h.level, h.title) for h in headings(doc, "rst")] == [
        (1, "Chapter"), (2, "Part"), (3, "Boxed"), (4, "Underlined"), (1, "Other chapter")]
    assert sections(doc, "rst") == ["Chapter", "Chapter > Part", "Chapter > Part > Boxed",
                                    "Chapter > Part > Boxed > Underlined", "Other chapter"]


def test_rst_adornments_are_any_punctuation_at_least_as_long_as_the_title():
    for char in "=-`:'\"~^_*+#<>":
        assert [h.title for h in headings(f"Title\n{char * 5}\n\nText.\n", "rst")] == ["Title"]
        assert [h.title for h in headings(f"Title\n{char * 9}\n\nText.\n", "rst")] == ["Title"]
        assert headings(f"Title\n{char * 4}\n\nText.\n", "rst") == []  # too short


def test_rst_heading_only_section_joins_the_next():
    doc = ("Annual Report\n=============\n\nSummary\n-------\n\nRevenue rose.\n\n"
           "Staff\n-----\n\n31.")
    chunks = chunk_text("r", doc, "", ChunkingConfig(size=200, overlap=20), format="rst")
    assert [c.section for c in chunks] == ["Annual Report > Summary", "Annual Report > Staff"]
    assert chunks[0].start == 0 and chunks[0].text.startswith("Annual Report\n====")
    only = chunk_text("h", "Only a title\n============\n", "", format="rst")
    assert [(c.text.strip(), c.section) for c in only] == [
        ("Only a title\n============", "Only a title")]


def test_asciidoc_one_line_headings():
    doc = ("= Ferry Handbook\n\nIntro.\n\n== Tickets\n\nBuy at the quay.\n\n=== Refunds\n\n"
           "Within 14 days.\n\n== Safety ==\n\nWear a vest.\n")
    assert sections(doc, "asciidoc") == [
        "Ferry Handbook", "Ferry Handbook > Tickets", "Ferry Handbook > Tickets > Refunds",
        "Ferry Handbook > Safety"]
    # Not a heading: mid-paragraph, no space after the = signs.
    assert headings("Intro line\n== not a heading\n\n==no space\n", "asciidoc") == []


def test_asciidoc_two_line_headings_within_two_characters():
    doc = ("Ferry Handbook\n==============\n\nIntro.\n\nTickets\n-----\n\nBuy.\n\n"
           "Refunds\n~~~~~~~~~\n\nSoon.\n\nDeep\n^^^^\n\nDeeper.\n\nDeepest\n+++++++\n\nEnd.\n")
    assert [(h.level, h.title) for h in headings(doc, "asciidoc")] == [
        (1, "Ferry Handbook"), (2, "Tickets"), (3, "Refunds"), (4, "Deep"), (5, "Deepest")]
    assert headings("Tickets\n----------\n\nBuy.\n", "asciidoc") == []  # 3 longer
    assert headings("Ferry Handbook\n===========\n\nx\n", "asciidoc") == []  # 3 shorter


def test_git_doc_page():
    for fmt in ("asciidoc", "text"):
        assert sections(GIT_ADD, fmt) == GIT_ADD_SECTIONS
        assert [h.level for h in headings(GIT_ADD, fmt)] == [1, 2, 2, 2, 2, 2, 2]
    chunks = chunk_text("git-add", GIT_ADD, "", ChunkingConfig(size=400, overlap=20),
                        format="text")
    assert chunks[0].text.startswith("git-add(1)\n==========\n\nNAME\n----\ngit-add - Add")
    # The listing blocks stay in their section: "Update>> -2" between two dashed lines
    # would be an overlined rst title.
    assert "Update>> -2" in chunks[-1].text and "$ git add -A" in chunks[-2].text


def test_lookalikes_are_not_headings():
    table = "Fares\n=====\n\n=====  =====\nZone   Price\n=====  =====\nA      3\n=====  =====\n"
    literal = "Example::\n\n    Title\n    =====\n\n    code\n"
    items = "- first item\n------------\n\n* second\n********\n"
    paragraph = ("This paragraph has two lines\nand then a line of dashes.\n"
                 "--------------------------\n\n"
                 "A long line of prose that is not a title at all.\n-----\n\nMore prose.\n")
    transition = "Before.\n\n----------\n\nAfter.\n"
    punctuation = "...\n---\n\n____\n====\n"
    for fmt in ("rst", "asciidoc", "text"):
        assert [h.title for h in headings(table, fmt)] == ["Fares"], fmt
        for doc in (literal, items, paragraph, transition, punctuation):
            assert headings(doc, fmt) == [], (fmt, doc)
            assert sections(doc, fmt) == [""] * len(sections(doc, fmt))


def test_text_is_sniffed_for_rst_or_asciidoc_headings():
    sphinx_source = (".. _intro:\n\nIntroduction\n************\n\nWelcome.\n\n"
                     "Getting started\n===============\n\nInstall it.\n")
    assert [(h.level, h.title) for h in headings(sphinx_source, "text")] == [
        (1, "Introduction"), (2, "Getting started")]
    assert sections(sphinx_source, "text") == ["", "Introduction",
                                               "Introduction > Getting started"]
    # AsciiDoc markers make it AsciiDoc: its levels, its blocks.
    adoc = "[[top]]\nHandbook\n--------\n\n== Tickets\n\nBuy.\n"
    assert [(h.level, h.title) for h in headings(adoc, "text")] == [(2, "Handbook"),
                                                                      (2, "Tickets")]


def test_plain_text_without_headings_stays_one_section():
    prose = ("Dear team,\n\nThe ferry leaves at 9. Tickets cost 5 shells - cash only.\n"
             "# not a heading\n\n-- \nRegards,\nAnna\n")
    assert headings(prose, "text") == []
    chunks = chunk_text("t", prose, "", ChunkingConfig(size=800, overlap=20), format="text")
    assert [(c.section, c.text) for c in chunks] == [("", prose)]
    assert headings("Title\n=====\n", "html") == []  # html is converted to markdown first
