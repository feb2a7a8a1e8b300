"""eval.json, eval.md and eval.png."""

import json

from evaluation.evaluate import EvalOptions, evaluate
from evaluation.report import causes_table, markdown_table, write_report

from .fake_server import DOCS, FORMATS, QUESTIONS, FakeServer


async def test_report_files(tmp_path):
    opts = EvalOptions(corpus=tmp_path, questions=tmp_path / "q.jsonl")
    result = await evaluate("http://fake", opts, QUESTIONS, FORMATS, DOCS,
                            transport=FakeServer().transport())
    paths = write_report(result, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "eval.json", "eval.md", "eval.png"]
    saved = json.loads(paths["json"].read_text())
    assert set(saved) == {"config", "retrieval", "routes", "route_pairs"}
    assert saved["routes"]["rag"]["questions"][0]["answer"].startswith("Alpha was founded")
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = markdown_table(result)
    lines = table.splitlines()
    assert lines[0].startswith("| route | accuracy | single | multi | unanswerable | recall@5 |")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines[2:]}
    assert set(rows) == {"base", "rag", "hybrid"}
    assert rows["base"].split(" | ")[5:7] == ["-", "-"]  # no retrieval: n/a, not 0
    assert rows["hybrid"].split(" | ")[1] == "1.00"
    assert rows["hybrid"].split(" | ")[-2] == "0 (0 answerable)"  # grounding replaced
    assert rows["base"].split(" | ")[-2] == "-"
    assert table in paths["markdown"].read_text()
    causes = causes_table(result).splitlines()
    assert causes[0].startswith("| route | wrong | sources lacked a gold document |")
    cause_rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in causes[2:]}
    for name, cells in cause_rows.items():
        c = result["routes"][name]["metrics"]["wrong_causes"]
        counted = [int(x.strip(" |")) for x in cells[2:] if x.strip(" |") != "-"]
        assert int(cells[1]) == c["wrong"] == sum(counted)  # each wrong answer once
    assert cause_rows["base"][2] == "-"  # no retrieval
    assert "## Why answers were wrong" in paths["markdown"].read_text()
