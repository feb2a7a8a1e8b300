"""Mix, routes and prompt-length options; prompts and request bodies."""

import random

import pytest

from loadtest.workload import DEFAULT_MIX, Workload, parse_length, parse_mix, parse_routes


def test_parse_mix():
    assert parse_mix(None) == DEFAULT_MIX
    assert parse_mix("plain=3,rag,admin=2") == {"plain": 3, "rag": 1, "adapter": 0,
                                                "hybrid": 0, "admin": 2}


@pytest.mark.parametrize("text, message", [
    ("chat=1", "unknown user kind"), ("plain=x", "not a whole number"),
    ("plain=-1", ">= 0"), ("admin=1", "at least one"), ("plain=0", "at least one")])
def test_parse_mix_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_mix(text)


def test_parse_routes():
    assert parse_routes("adapter=my-lora")["adapter"] == "my-lora"
    assert parse_routes("")["plain"] == "base"
    with pytest.raises(ValueError, match="KIND=ROUTE"):
        parse_routes("admin=x")


def test_parse_length():
    assert parse_length("64") == (64, 64) and parse_length(32) == (32, 32)
    assert parse_length("16-256") == (16, 256)
    for bad in ("0", "9-3", "a", "1-b"):
        with pytest.raises(ValueError):
            parse_length(bad)


def test_chat_body_and_prompts():
    w = Workload(prompt_len=(100, 100), max_tokens=7, ignore_eos=True, questions=["Q?"])
    rng = random.Random(0)
    body = w.chat_body("plain", rng)
    assert body["model"] == "base" and body["max_tokens"] == 7 and body["ignore_eos"]
    assert body["stream"] and body["stream_options"] == {"include_usage": True}
    words = len(body["messages"][0]["content"].split())
    assert 90 <= words <= 110  # about one token per filler word
    assert w.chat_body("rag", rng)["messages"][0]["content"] == "Q?"
    assert "ignore_eos" not in Workload(questions=["Q?"]).chat_body("hybrid", rng)


def test_routes_in_use_and_sample_questions():
    w = Workload(mix=parse_mix("plain=1,hybrid=2"))
    assert w.routes_in_use() == ["base", "hybrid"]
    assert len(w.questions) >= 40  # the helix sample questions
