"""`lorag eval` on the command line: bad inputs fail fast, before any server starts."""

import json

import pytest

from serving.cli import build_parser, main


def test_options_and_defaults():
    args = build_parser().parse_args(["eval", "--routes", "rag, hybrid", "--k", "3"])
    assert args.routes == ["rag", "hybrid"] and args.k == 3 and args.concurrency == 4
    assert args.url is None and args.corpus is None and not args.keep_index


def test_a_malformed_question_file_exits_2_naming_the_line(tmp_path, capsys):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "a", "question": "x", "answer": "y",
                                     "doc_ids": ["d"], "kind": "single"}) + "\n{oops\n")
    rc = main(["eval", "--questions", str(questions), "--url", "http://127.0.0.1:9"])
    assert rc == 2
    assert f"{questions}:2: not valid JSON" in capsys.readouterr().err


def test_a_missing_corpus_exits_2(tmp_path, capsys):
    rc = main(["eval", "--corpus", str(tmp_path / "none"), "--url", "http://127.0.0.1:9"])
    assert rc == 2 and "not a folder" in capsys.readouterr().err


def test_an_unreachable_server_exits_1(tmp_path, capsys):
    rc = main(["eval", "--url", "http://127.0.0.1:9", "--out", str(tmp_path / "out")])
    assert rc == 1 and "GET /v1/models failed" in capsys.readouterr().err


def test_a_server_that_does_not_start_is_fatal(tmp_path):
    from evaluation.command import local_server
    from evaluation.runner import EvalError

    with pytest.raises(EvalError, match="the server did not start.*exited with 2"):
        with local_server(tmp_path / "missing.yaml", tmp_path / "server.log"):
            pass
    assert "cannot read config" in (tmp_path / "server.log").read_text()
