"""loadtest.bench_rerank on three sample questions: it reports where the gold document
lands before and after reranking, and the time a request takes."""

import json
from pathlib import Path

from loadtest import bench_rerank

HELIX = Path(__file__).resolve().parents[2] / "evaluation" / "samples" / "helix"


def test_bench_rerank_reports_ranking_and_cost(tmp_path, capsys):
    lines = HELIX.joinpath("questions.jsonl").read_text().splitlines()
    picked = [line for line in lines if json.loads(line)["kind"] == "single"][:3]
    questions = tmp_path / "q.jsonl"
    questions.write_text("\n".join(picked) + "\n")
    out = tmp_path / "bench.json"
    assert bench_rerank.main(["--questions", str(questions), "--candidates", "5",
                              "--top-k", "2", "--threads", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["questions"] == 3 and result["candidates"] == 5
    for order in ("similarity", "reranked"):
        assert 0 <= result["gold_first"][order] <= 1
        assert 0 <= result["recall_at_2"][order] <= 1
    assert 0 < result["seconds_per_request"]["1"]["p50"] < 60
    assert "gold first" in capsys.readouterr().out
