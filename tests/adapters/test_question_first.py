"""The context-json examples rewritten for the Qwen 0.5B config's hybrid routes
(adapters/samples/data/question_first.py): a rewritten prompt is exactly what the route
renders for the same sources and question, so the adapter trains on the layout it serves."""

import json
import subprocess
import sys

import pytest

from serving import rag
from serving.config import load_config
from tests.conftest import ROOT

SCRIPT = ROOT / "adapters" / "samples" / "data" / "question_first.py"
HITS = [{"doc_id": "travel-policy", "title": "Travel Policy", "section": "Rail",
         "text": "First class is allowed on journeys over 3 hours."},
        {"doc_id": "org", "title": "Org", "section": "", "text": "The CFO is Ana Ruiz."}]
QUESTION = "can I go first class on a 4 hour train?"


def rendered(config: str, route: str) -> list[dict]:
    template = load_config(ROOT / "configs" / config).route(route).template
    sources = [rag.render_source(template, n, hit) for n, hit in enumerate(HITS, 1)]
    return rag.build_messages(template, [{"role": "user", "content": QUESTION}],
                              retrieval=True, sources=sources)


def test_rewritten_example_is_what_the_qwen_hybrid_route_renders(tmp_path):
    trained_on = rendered("default.yaml", "hybrid")  # the committed examples' layout
    example = {"messages": [*trained_on, {"role": "assistant",
                                          "content": '{"answer": "Yes [1]", "confidence": "high"}'}]}
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps(example) + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(SCRIPT), str(src), str(dst)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(dst.read_text(encoding="utf-8"))["messages"]
    for route in ("hybrid", "hybrid-strict"):
        assert out[:-1] == rendered("qwen2.5-coder-0.5b-instruct.yaml", route)
    assert out[-1] == example["messages"][-1]  # the target is unchanged


def test_a_prompt_without_sources_and_question_is_refused():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from question_first import question_first
    finally:
        sys.path.remove(str(SCRIPT.parent))
    assert question_first("Sources:\n<sources>\n[1] a\nb\n</sources>\n\nQuestion: q?") \
        .startswith("Question: q?\n\nSources:")
    with pytest.raises(ValueError, match="not a context-json prompt"):
        question_first("What is the CFO's name?")
