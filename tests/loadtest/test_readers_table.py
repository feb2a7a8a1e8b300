"""The readers table: one row per model x set x route, from `lorag eval` runs."""

import json

from loadtest import readers_table


def _run(tmp_path, name, routes):
    metrics = {"accuracy": {"single": 0.9, "multi": 0.5, "unanswerable": 0.25,
                            "format": 0.5},
               "accuracy_ci": {"single": [0.7, 0.97], "multi": [0.2, 0.8],
                               "unanswerable": [0.05, 0.6], "format": [0.2, 0.8]},
               "citation_precision": 0.96, "cited_sources": 25, "format_validity": 1.0,
               "format_accuracy": 0.5, "latency_p50_s": 12.34, "tokens_per_answer": 20}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"routes": {r: {"metrics": metrics} for r in routes}}))
    return path


def test_rows_per_run_and_route_with_goals_marked(tmp_path, capsys):
    a = _run(tmp_path, "a", ["rag", "json"])
    b = _run(tmp_path, "b", ["rag", "json-strict"])
    out = tmp_path / "table.md"
    readers_table.main([f"M:helix:{a}", f"M:northwind:{b}@json-strict", "--out", str(out)])
    rows = json.loads(out.with_suffix(".json").read_text())
    assert [(r["set"], r["route"]) for r in rows] == [
        ("helix", "rag"), ("helix", "json"), ("northwind", "json-strict")]
    line = out.read_text().splitlines()[2]
    assert line.startswith("| M | helix | rag | 0.90 (0.70-0.97) ✓ | 0.50 (0.20-0.80) ✓ |")
    assert "0.25 (0.05-0.60) |" in line and "0.96 (25) ✓" in line and "| 12.3 |" in line
    assert capsys.readouterr().out == out.read_text()
