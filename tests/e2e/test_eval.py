"""`lorag eval --url` against the session server, on a tiny corpus of invented facts.

Also the chat body's `index` field on the real server: its 400/404 answers.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCS = {
    "zorvath-station.md": "# Zorvath Station\n\nZorvath Station is a research base on the "
    "island of Pellmire. It was opened in 1987 by the explorer Odile Fenwarra. Its radio call "
    "sign is ZV-4412.\n",
    "kelmora-bakery.md": "# Kelmora Bakery\n\nThe Kelmora Bakery in the town of Brissel bakes "
    "a rye loaf called the Tessan Crown. Its head baker is Amund Colfrey.\n",
    "vantry-ferry.txt": "The Vantry ferry crosses Lake Omsel from Dunmarch to the island of "
    "Pellmire. The crossing takes 42 minutes. The ferry is named the Grey Heron.\n",
}
QUESTIONS = [
    {"id": "q1", "question": "Who opened Zorvath Station?", "answer": "Odile Fenwarra",
     "aliases": ["Fenwarra"], "doc_ids": ["zorvath-station"], "kind": "single"},
    {"id": "q2", "question": "Who is the head baker of the Kelmora Bakery?",
     "answer": "Amund Colfrey", "aliases": ["Colfrey"], "doc_ids": ["kelmora-bakery"],
     "kind": "single"},
    {"id": "q3", "question": "How long does the ferry to the island of Zorvath Station take?",
     "answer": "42 minutes", "aliases": [], "doc_ids": ["vantry-ferry", "zorvath-station"],
     "kind": "multi"},
    {"id": "q4", "question": "What is the salary of the mayor of Tokyo?", "answer": "",
     "aliases": [], "doc_ids": [], "kind": "unanswerable"},
]
FORMATS = [
    {"id": "f1", "question": "What is the radio call sign of Zorvath Station?",
     "answer": "ZV-4412", "aliases": [], "doc_ids": ["zorvath-station"]},
    {"id": "f2", "question": "What is the name of the Vantry ferry?", "answer": "Grey Heron",
     "aliases": [], "doc_ids": ["vantry-ferry"]},
]


def write_inputs(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text)
    questions, formats = tmp_path / "questions.jsonl", tmp_path / "formats.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    formats.write_text("".join(json.dumps(f) + "\n" for f in FORMATS))
    return corpus, questions, formats


def test_eval_over_a_fresh_index(server_url, http, tmp_path):
    corpus, questions, formats = write_inputs(tmp_path)
    out = tmp_path / "out"
    # An earlier run, as far as --baseline reads it: the rag route wrong on everything.
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"routes": {"rag": {
        "questions": [{**q, "correct": False} for q in QUESTIONS],
        "format_prompts": [{**f, "kind": "format", "correct": False} for f in FORMATS]}}}))
    proc = subprocess.run(
        [sys.executable, "-m", "serving.cli", "eval", "--url", server_url, "--corpus",
         str(corpus), "--questions", str(questions), "--format-prompts", str(formats),
         "--routes", "rag,hybrid", "--out", str(out), "--baseline", str(baseline)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == {"eval.json", "eval.md", "eval.png"}
    assert (out / "eval.png").read_bytes()[:4] == b"\x89PNG"
    result = json.loads((out / "eval.json").read_text())
    assert list(result["routes"]) == ["rag", "hybrid"]
    assert "| rag |" in proc.stdout and "| hybrid |" in proc.stdout
    assert result["retrieval"]["recall"] == 1.0 and result["retrieval"]["all_found"] == 1.0
    for name, route in result["routes"].items():
        m = route["metrics"]
        assert m["recall_at_k"] == 1.0 and m["k"] == 5, name
        assert m["errors"] == 0, [r["error"] for r in route["questions"] if r["error"]]
        assert m["questions"] == 4 and m["format_prompts"] == 2
        assert set(m["accuracy"]) == {"overall", "single", "multi", "unanswerable"}
        # every source came from the fresh index (the corpus), not from helix
        sources = {d for r in route["questions"] + route["format_prompts"]
                   for d in r["retrieved_doc_ids"] or []}
        assert sources and sources <= {"zorvath-station", "kelmora-bakery", "vantry-ferry"}
    # how sure: intervals, the two routes on the same questions, the baseline comparison
    rag, hybrid = (result["routes"][r] for r in ("rag", "hybrid"))
    assert set(rag["metrics"]["accuracy_ci"]) == {"overall", "single", "multi",
                                                  "unanswerable", "format"}
    [pair] = result["route_pairs"]
    assert (pair["a"], pair["b"], pair["questions"]) == ("rag", "hybrid", 4)
    assert pair["a_correct"] == sum(r["correct"] for r in rag["questions"])
    [against] = result["baseline"]["routes"]  # hybrid is not in the baseline
    assert (against["route"], against["matched"], against["only_a"]) == ("rag", 6, 0)
    assert against["only_b"] == against["b_correct"] == pair["a_correct"]
    report = (out / "eval.md").read_text()
    assert "## How sure" in report and f"Against the baseline `{baseline}`" in report
    assert "Against the baseline" in proc.stdout
    index = result["config"]["index"]
    assert index.startswith("eval-")
    assert index not in {d["name"] for d in http.get("/v1/indexes").json()["data"]}
    assert http.get(f"/v1/indexes/{index}").status_code == 404


@pytest.mark.parametrize("body, status, param", [
    ({"model": "rag", "index": 3}, 400, "index"),
    ({"model": "base", "index": "helix"}, 400, "index"),
    ({"model": "rag", "index": "no-such-index"}, 404, "index"),
])
def test_index_field_errors(http, body, status, param):
    r = http.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "Where is Ostbridge?"}], **body})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_index_field_points_a_route_at_another_index(http, client):
    name = "eval-e2e-other"
    http.delete(f"/v1/indexes/{name}")
    assert http.post("/v1/indexes", json={"name": name}).status_code == 201
    try:
        r = http.post(f"/v1/indexes/{name}/documents", json={"documents": [
            {"doc_id": "zorvath-station", "text": DOCS["zorvath-station.md"]}]})
        assert r.status_code == 200, r.text
        resp = client.chat.completions.create(
            model="rag", messages=[{"role": "user", "content": "Who opened Zorvath Station?"}],
            max_tokens=32, extra_body={"index": name})
        citations = resp.model_extra["citations"]
        assert citations and {c["index"] for c in citations} == {name}
        assert {c["doc_id"] for c in citations} == {"zorvath-station"}
    finally:
        http.delete(f"/v1/indexes/{name}")
