"""The multi-hop benchmark on a tiny corpus: a question whose answer is in a page the
question's words do not match, through the real embedder, index and hop code."""

import json

import pytest

from loadtest import bench_multihop as bench

DOCS = {
    "site-alder.md": "# Alder Farm (ALD-01)\n\n## Profile\n\nAlder Farm opened on 3 May 2019 "
                     "beside the Kelvie river, at 12 Ferry Road. It grows basil and mint.\n",
    "leadership.md": "# Leadership\n\n## Site managers\n\n| Site | Site code | Site manager |\n"
                     "|------|-----------|--------------|\n| Alder | ALD-01 | Morwen Tash |\n"
                     "| Birch | BIR-02 | Oskar Lind |\n",
    "site-birch.md": "# Birch Farm (BIR-02)\n\n## Profile\n\nBirch Farm has 30 staff and "
                     "grows lettuce in a former warehouse.\n",
    "bakery.md": "# Bakery\n\nThe bakery bakes sourdough in a wood-fired oven every morning.\n",
}
QUESTIONS = [
    {"id": "s1", "question": "How many staff does Birch Farm have?", "answer": "30",
     "aliases": [], "doc_ids": ["site-birch"], "kind": "single"},
    {"id": "m1", "question": "Who is the site manager of the farm beside the Kelvie river?",
     "answer": "Morwen Tash", "aliases": [], "doc_ids": ["site-alder", "leadership"],
     "kind": "multi"},
    {"id": "u1", "question": "What is the price of a rye loaf?", "answer": "", "aliases": [],
     "doc_ids": [], "kind": "unanswerable"},
]


@pytest.fixture
def samples(tmp_path):
    root = tmp_path / "samples"
    (root / "tiny" / "docs").mkdir(parents=True)
    for name, text in DOCS.items():
        (root / "tiny" / "docs" / name).write_text(text)
    (root / "tiny" / "questions.jsonl").write_text(
        "\n".join(json.dumps(q) for q in QUESTIONS) + "\n")
    return root


class CharTokenizer:
    """One token a character; the chat template joins the messages."""

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(map(chr, ids))

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return "\n".join(m["content"] or "" for m in messages)


def test_a_second_hop_finds_the_page_the_first_sources_name(samples, tmp_path):
    logged = []
    result = bench.run(["tiny"], bench.ROOT / "configs" / "default.yaml", "helix",
                       {"top_k": 1, "hop_k": 1, "min_score": 0.05}, tmp_path / "work",
                       tokenizer=CharTokenizer(), samples=samples, log=logged.append)
    assert result["settings"]["top_k"] == 1 and result["settings"]["hop_k"] == 1
    assert result["spec"]["chunking"] == {"unit": "chars", "size": 600, "overlap": 80}
    (tiny,) = result["sets"]
    one, two = tiny["variants"]["hops=1"], tiny["variants"]["hops=2"]
    rows = {r["id"]: r for r in two["per_question"]}
    assert rows["m1"]["docs"] == ["site-alder", "leadership"]
    assert "Alder Farm" in rows["m1"]["queries"][0]
    assert one["by_kind"]["multi"]["all_gold"] == 0.0
    assert two["by_kind"]["multi"]["all_gold"] == 1.0
    assert two["by_kind"]["multi"]["answer_in_sources"] == 1.0
    assert two["by_kind"]["single"]["all_gold"] == 1.0
    assert one["by_kind"]["unanswerable"]["sources"] == 1.0
    assert "prompt" in two["by_kind"]["multi"]  # figures of the sources the prompt holds
    assert set(result["all"]) == {v.name for v in bench.variants()}
    assert any("| hops=2 |" in t for t in logged)
    json.dumps(result)


def test_main_writes_json_and_refuses_unknown_sets(samples, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert bench.main(["--sets", "nope", "--samples", str(samples), "--tokenizer", "",
                       "--out", str(out)]) == 2
    assert bench.main(["--sets", "tiny", "--samples", str(samples), "--tokenizer", "",
                       "--top-k", "1", "--hop-k", "1", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["command"].startswith("python -m loadtest.bench_multihop --sets tiny")
    assert data["prompt_figures"] is False and "prompt" not in json.dumps(
        data["sets"][0]["variants"]["hops=2"]["by_kind"])
    assert "### all sets" in capsys.readouterr().out
