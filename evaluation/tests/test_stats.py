"""How sure the figures are: Wilson intervals, paired McNemar tests between routes and
between runs (`lorag eval --baseline`, `lorag eval-compare`)."""

import copy
import json

import pytest

from evaluation.command import baseline_summary
from evaluation.evaluate import EvalOptions, evaluate
from evaluation.report import write_report
from evaluation.stats import (
    BaselineError,
    interval,
    load_baseline,
    mcnemar,
    paired,
)
from serving.cli import main

from .fake_server import DOCS, FORMATS, QUESTIONS, FakeServer


def test_wilson_intervals():
    # Reference values (Wilson score, 95%): 0/10 -> [0, 0.2775], 5/10 -> [0.2366, 0.7634]
    assert interval(0, 10) == pytest.approx([0.0, 0.2775], abs=1e-4)
    assert interval(5, 10) == pytest.approx([0.2366, 0.7634], abs=1e-4)
    lo, hi = interval(14, 30)
    assert lo < 14 / 30 < hi and hi - lo > 0.3  # 30 questions cannot pin an accuracy down
    assert interval(0, 0) is None


def test_exact_mcnemar():
    assert mcnemar(0, 0) == 1.0
    assert mcnemar(0, 5) == 0.0625 and mcnemar(5, 0) == 0.0625  # 2 * 0.5**5, either way
    assert mcnemar(9, 1) == pytest.approx(0.0215, abs=1e-4)
    assert mcnemar(4, 6) == pytest.approx(0.7539, abs=1e-4)


def rec(id_, kind, correct, question=None):
    return {"id": id_, "kind": kind, "correct": correct, "question": question or f"q {id_}"}


def test_paired_counts_match_questions_by_id_and_text():
    a = [rec("1", "single", True), rec("2", "single", False), rec("3", "multi", False),
         rec("4", "unanswerable", True), rec("5", "single", True), rec("f", "format", True)]
    b = [rec("1", "single", False), rec("2", "single", True), rec("3", "multi", True),
         rec("4", "unanswerable", True), rec("5", "single", True, question="edited"),
         rec("f", "format", False), rec("6", "single", True)]
    c = paired(a, b)
    # 5 was edited between the runs and 6 is only in b: neither is compared
    assert (c["matched"], c["unmatched_a"], c["unmatched_b"]) == (5, 1, 2)
    # overall: the 4 matched questions, not the format prompt
    assert (c["questions"], c["a_correct"], c["b_correct"]) == (4, 2, 3)
    assert (c["only_a"], c["only_b"], c["p_value"]) == (1, 2, 1.0)
    assert c["by_kind"]["single"] == {"questions": 2, "a_correct": 1, "b_correct": 1,
                                      "only_a": 1, "only_b": 1, "p_value": 1.0}
    assert (c["by_kind"]["multi"]["only_b"], c["by_kind"]["format"]["only_a"]) == (1, 1)


async def fake_run(tmp_path, name, server=None):
    opts = EvalOptions(corpus=tmp_path, questions=tmp_path / "q.jsonl")
    result = await evaluate("http://fake", opts, QUESTIONS, FORMATS, DOCS,
                            transport=(server or FakeServer()).transport())
    return result, write_report(result, tmp_path / name)


async def test_a_run_reports_intervals_and_every_pair_of_routes(tmp_path):
    result, paths = await fake_run(tmp_path, "out")
    base, rag = (result["routes"][r]["metrics"] for r in ("base", "rag"))
    assert base["accuracy_ci"]["overall"] == interval(1, 3)
    assert base["accuracy_ci"]["single"] == interval(0, 1)
    assert rag["accuracy_ci"]["format"] == interval(0, 1)
    pairs = {(p["a"], p["b"]): p for p in result["route_pairs"]}
    assert list(pairs) == [("base", "rag"), ("base", "hybrid"), ("rag", "hybrid")]
    # base: only the unanswerable question right; rag: all three
    assert (pairs["base", "rag"]["only_a"], pairs["base", "rag"]["only_b"]) == (0, 2)
    assert pairs["rag", "hybrid"]["by_kind"]["format"]["only_b"] == 1  # hybrid answers JSON
    md = paths["markdown"].read_text()
    assert "| rag | 1.00 (0.44-1.00) |" in md  # 3 of 3: the interval still reaches 0.44
    assert "| base | rag | 1 / 3 of 3 | 0 | 2 | 0.500 |" in md
    assert json.loads(paths["json"].read_text())["route_pairs"] == result["route_pairs"]


async def test_baseline_and_eval_compare(tmp_path, capsys):
    before, before_paths = await fake_run(tmp_path, "before")
    after = copy.deepcopy(before)
    rag = after["routes"]["rag"]["questions"]
    rag[0]["correct"], rag[2]["correct"] = False, False  # a change broke two answers
    del after["routes"]["hybrid"]
    after["baseline"] = baseline_summary(before_paths["json"], load_baseline(
        before_paths["json"]), after)
    rows = {r["route"]: r for r in after["baseline"]["routes"]}
    assert list(rows) == ["base", "rag"]  # routes of this run that the baseline has
    assert (rows["rag"]["only_a"], rows["rag"]["only_b"], rows["rag"]["p_value"]) == (2, 0, 0.5)
    assert rows["base"]["only_a"] == rows["base"]["only_b"] == 0
    before_causes = before["routes"]["rag"]["metrics"]["wrong_causes"]
    after["routes"]["rag"]["metrics"]["wrong_causes"] = {
        **before_causes, "wrong": before_causes["wrong"] + 2,
        "answered_wrong": before_causes["answered_wrong"] + 2}
    after["baseline"] = baseline_summary(before_paths["json"], load_baseline(
        before_paths["json"]), after)
    rows = {r["route"]: r for r in after["baseline"]["routes"]}
    assert rows["rag"]["wrong_causes"] == {
        "baseline": before_causes, "current": after["routes"]["rag"]["metrics"]["wrong_causes"]}
    after_paths = write_report(after, tmp_path / "after")
    md = after_paths["markdown"].read_text()
    assert f"Against the baseline `{before_paths['json']}`" in md
    assert "Wrong answers by cause, baseline and this run:" in md
    causes = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1]
              for line in md.splitlines() if line.startswith("| rag, ")}
    assert causes == {"rag, baseline": str(before_causes["wrong"]),
                      "rag, this run": str(before_causes["wrong"] + 2)}

    assert main(["eval-compare", str(before_paths["json"]), str(after_paths["json"])]) == 0
    out = capsys.readouterr().out
    assert "| rag | 3 / 1 of 3 | 2 | 0 | 0.500 | 1/0 (p 1.00) | 0/0 (p 1.00) | 1/0 (p 1.00) | 0/0 (p 1.00) |" in out
    assert f"| rag, this run | {before_causes['wrong'] + 2} |" in out

    # a baseline saved before causes existed: the paired table, no causes table
    old = json.loads(before_paths["json"].read_text())
    for route in old["routes"].values():
        del route["metrics"]["wrong_causes"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["eval-compare", str(tmp_path / "old.json"), str(after_paths["json"])]) == 0
    out = capsys.readouterr().out
    assert "| rag | 3 / 1 of 3 |" in out and "Wrong answers by cause" not in out


def test_bad_baselines_exit_2_before_anything_runs(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"routes": {"rag": {"questions": [{"id": "q1"}]}}}')
    rc = main(["eval", "--baseline", str(bad), "--url", "http://127.0.0.1:9"])
    assert rc == 2 and "route 'rag' has no scored questions" in capsys.readouterr().err
    bad.write_text("{")
    with pytest.raises(BaselineError, match="not JSON"):
        load_baseline(bad)
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(tmp_path / "missing.json")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"routes": {"tuned": {"questions": [rec("1", "single", 1)]}}}))
    same = tmp_path / "same.json"
    same.write_text(json.dumps({"routes": {"rag": {"questions": [rec("1", "single", 1)]}}}))
    assert main(["eval-compare", str(other), str(same)]) == 2
    assert "no route is in both runs (tuned against rag)" in capsys.readouterr().err
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({"routes": {"rag": {"questions": [
        rec("1", "single", 1, question="changed")]}}}))
    assert main(["eval-compare", str(same), str(edited)]) == 2
    assert "share no question" in capsys.readouterr().err
