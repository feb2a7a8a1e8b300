"""The real-manual answer set: questions and gold answers derived from git's and
PostgreSQL's reference pages, written as files `lorag eval` reads."""

import json

from loadtest import realtext_reader
from evaluation.data import load_format_prompts, load_questions
from retrieval.files import load_documents


def test_the_set_is_what_lorag_eval_reads(doc_root, tmp_path):
    summary = realtext_reader.build(tmp_path / "set", per_set=1, root=doc_root)
    out = tmp_path / "set"
    questions = load_questions(out / "questions.jsonl")
    formats = load_format_prompts(out / "format_prompts.jsonl")
    assert summary["questions"] == len(questions) == 2
    assert summary["format_prompts"] == len(formats) == 1  # one PostgreSQL page only
    asked = {q.id: (q.question, q.answer, q.aliases, q.doc_ids) for q in [*questions, *formats]}
    assert asked == {
        "git-q01": ('Which git command is described as "Add file contents to the index"?',
                    "git add", ["git-add"], ["git-add"]),
        "git-f01": ('Which git command is described as "Remove files"?', "git rm",
                    ["git-rm"], ["git-rm"]),
        "postgresql-q02": ('Which PostgreSQL command or program is described as '
                           '"define a new table"?', "CREATE TABLE", [], ["sql-createtable"])}
    docs = {d["doc_id"] for d in load_documents([out / "docs"])}
    assert docs == {"git-add", "git-rm", "sql-createtable"}  # no question's text leaks:
    assert "Add file contents" not in (out / "docs" / "git-add.txt").read_text()
    assert summary["packages"] == {"git-doc": "1.0-test", "postgresql-doc-15": "1.0-test"}


def test_a_page_naming_two_functions_accepts_each(doc_root, tmp_path):
    (doc_root / "postgresql-doc-15/html/spi-spi-connect.html").write_text(
        '<html><body><div class="refnamediv"><p>SPI_connect, SPI_connect_ext — connect a C '
        "function to the SPI manager</p></div><p>Body.</p></body></html>")
    realtext_reader.build(tmp_path / "set", per_set=4, root=doc_root)
    rows = [json.loads(line) for name in ("questions.jsonl", "format_prompts.jsonl")
            for line in (tmp_path / "set" / name).read_text().splitlines()]
    spi = next(r for r in rows if r["doc_ids"] == ["spi-spi-connect"])
    assert spi["answer"] == "SPI_connect, SPI_connect_ext"
    assert spi["aliases"] == ["SPI_connect", "SPI_connect_ext"]
