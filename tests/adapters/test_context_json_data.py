"""The context-json training data generator (tools/context_json_data): prompts built by
the serving code, targets labelled from what retrieval returned. Runs the generator on a small set (no training, no engine;
about half a minute, most of it loading the embedder and the tokenizer)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from serving import rag
from serving.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "context_json_data" / "make_context_json.py"
IDK = {"answer": "I don't know.", "confidence": "low"}
TWO_FACT = {"pair", "compare", "bridge", "change"}
REFUSED = {"unanswerable", "miss", "masked"}
EVALUATION_NAMES = ("helix", "verdant", "tarrowmere", "ostbridge", "quillhaven")


@pytest.fixture(scope="module")
def route():
    return load_config(ROOT / "configs" / "default.yaml").route("hybrid")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("context-json")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out-dir", str(out), "--train-orgs", "2",
         "--heldout-orgs", "1", "--meta"], cwd=ROOT, capture_output=True, text=True,
        timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    data = {}
    for split in ("train", "heldout"):
        lines = (out / f"context_json.{split}.jsonl").read_text(encoding="utf-8").splitlines()
        metas = (out / f"context_json.{split}.meta.jsonl").read_text(
            encoding="utf-8").splitlines()
        assert lines and len(lines) == len(metas)
        data[split] = [(json.loads(a), json.loads(b)) for a, b in zip(lines, metas)]
    return data


def everything(generated):
    return generated["train"] + generated["heldout"]


def answer_of(record):
    return json.loads(record["messages"][-1]["content"])


def test_lines_are_chat_examples_answered_with_one_json_object(generated):
    for record, _ in everything(generated):
        assert set(record) == {"messages"}
        assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
        content = record["messages"][-1]["content"]
        answer = json.loads(content)
        assert set(answer) == {"answer", "confidence"}
        assert isinstance(answer["answer"], str) and answer["answer"]
        assert answer["confidence"] in ("high", "medium", "low")
        assert content == json.dumps(answer, ensure_ascii=False)  # json.dumps wrote it


def test_prompts_are_what_the_server_builds(generated, route):
    settings = route.retrieval
    for record, meta in everything(generated):
        sources = meta["sources"]
        assert 1 <= len(sources) <= settings.top_k
        assert [s["n"] for s in sources] == list(range(1, len(sources) + 1))
        scores = [s["score"] for s in sources]
        assert scores == sorted(scores, reverse=True) and min(scores) >= settings.min_score
        rendered = [rag.render_source(route.template, s["n"], s,
                                      text=s["text"] if s["truncated"] else None)
                    for s in sources]
        expected = rag.build_messages(route.template,
                                      [{"role": "user", "content": meta["question"]}],
                                      retrieval=True, sources=rendered)
        assert record["messages"][:-1] == expected
        assert meta["tokens"] <= 1024


def test_citations_stay_within_the_sources_of_the_prompt(generated):
    for record, meta in everything(generated):
        prompt = record["messages"][1]["content"]
        count = len(meta["sources"])
        assert all(f"\n[{n}] " in prompt for n in range(1, count + 1))
        assert f"\n[{count + 1}] " not in prompt
        cited = [int(n) for n in rag.MARKER_RE.findall(answer_of(record)["answer"])]
        assert all(1 <= n <= count for n in cited), (cited, count)


def test_answers_cite_the_source_that_states_the_fact(generated):
    for record, meta in everything(generated):
        answer = answer_of(record)
        if meta["kind"] in REFUSED:
            continue
        assert meta["gold"]
        for gold in meta["gold"]:
            assert f"[{gold['n']}]" in answer["answer"]
            assert gold["value"] in answer["answer"]
            assert gold["value"] in meta["sources"][gold["n"] - 1]["text"]
        expected = "medium" if meta["kind"] in TWO_FACT else "high"
        assert answer["confidence"] == expected
        if meta["kind"] in TWO_FACT:
            assert len(meta["gold"]) == 2


def test_unanswerable_questions_are_answered_i_dont_know(generated):
    for record, meta in everything(generated):
        answer = answer_of(record)
        if meta["kind"] in REFUSED:
            assert answer == IDK and meta["gold"] == []
        else:
            assert answer["answer"] != IDK["answer"]


def test_masked_questions_have_related_sources_none_of_which_answers(generated):
    masked = [meta for _, meta in everything(generated) if meta["kind"] == "masked"]
    assert masked
    for meta in masked:
        value = meta["missed"]
        assert value and meta["question"]
        assert not any(_states(value, s["text"]) for s in meta["sources"]), meta["question"]


def _states(value, text):
    import re
    return re.search(r"(?<![\w.,€$£])" + re.escape(value) + r"(?![\w]|[.,]\d)", text)


def test_the_set_mixes_kinds_and_holds_out_other_organisations(generated):
    kinds = {meta["kind"] for _, meta in generated["train"]}
    assert {"single", "unanswerable", "masked"} <= kinds and kinds & TWO_FACT
    train_orgs = {meta["org"] for _, meta in generated["train"]}
    held_orgs = {meta["org"] for _, meta in generated["heldout"]}
    assert len(train_orgs) == 2 and len(held_orgs) == 1 and not train_orgs & held_orgs


def test_nothing_comes_from_the_evaluation_knowledge_base(generated):
    for record, _ in everything(generated):
        text = json.dumps(record, ensure_ascii=False).lower()
        assert not [name for name in EVALUATION_NAMES if name in text]


def test_the_committed_data_uses_the_hybrid_routes_prompt_layout(route):
    """The sample adapter learnt the layout of the data it was trained on: the hybrid route
    must keep sending it (its template pins it in the default config), whatever the default
    retrieval template becomes."""
    committed = ROOT / "adapters" / "samples" / "data" / "context_json.train.jsonl"
    record = json.loads(committed.read_text(encoding="utf-8").splitlines()[0])
    system, user = record["messages"][0]["content"], record["messages"][1]["content"]
    assert system == route.template.system
    head, tail = route.template.context.split("{sources}")
    question = tail.split("{question}")[0]
    assert user.startswith(head.split("{question}")[0]) and question in user
