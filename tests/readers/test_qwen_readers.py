"""The Qwen2.5-Coder builtins served for real (vLLM on CPU), through the retrieval routes of
their configs (configs/qwen2.5-coder-*.yaml): the plain RAG route answers from the helix
sample and cites its source, and the JSON route whose format the engine enforces returns
exactly the schema's object; with the 0.5B model, its context-json LoRA answers in JSON and
cites by itself. The 0.5B model runs in `make test`; the 1.5B model is marked
slow (about 2 minutes to start and 30 s an answer on 2 cores) and runs by hand:
`pytest -m slow tests/readers` (its packages: `make model MODEL=qwen2.5-coder-1.5b-instruct`).

Each model runs in its own `lorag serve`, before the session server starts (own_cluster).
"""

import json
import os
import sys

import httpx
import pytest

from serving.local_server import running
from lorag_core.model_source import BUILTINS
from lorag_core.ports import free_port
from tests.conftest import ROOT, STARTUP_TIMEOUT_S

FOUNDED = "When was Helix Verdant founded?"  # "founded on 14 March 2011" (company-overview)


def serve(model: str, tmp_path_factory):
    try:
        BUILTINS[model].part_files(model)
    except FileNotFoundError as err:
        pytest.skip(str(err))
    work = tmp_path_factory.mktemp(model)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "serving.cli", "serve", "--config",
           str(ROOT / "configs" / f"{model}.yaml"), "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "LORAG_DATA_DIR": str(work / "data")}
    return url, running(cmd, url, work / "serve.log", STARTUP_TIMEOUT_S, env=env, cwd=ROOT)


def ask(url: str, route: str, question: str) -> dict:
    reply = httpx.post(f"{url}/v1/chat/completions", timeout=600, json={
        "model": route, "messages": [{"role": "user", "content": question}]})
    assert reply.status_code == 200, reply.text
    return reply.json()


def check_reader(url: str) -> None:
    rag = ask(url, "rag", FOUNDED)
    text = rag["choices"][0]["message"]["content"]
    assert "2011" in text and "[1]" in text, text
    assert not text.lstrip().startswith("[1]"), f"echoed the source listing: {text!r}"
    assert rag["citations"][0]["doc_id"] == "company-overview"

    strict = ask(url, "json-strict", FOUNDED)
    body = json.loads(strict["choices"][0]["message"]["content"])
    assert set(body) == {"answer", "confidence"}, body
    assert body["confidence"] in {"high", "medium", "low"} and "2011" in body["answer"], body


@pytest.mark.own_cluster
def test_qwen_0_5b_answers_from_sources_with_citations_and_enforced_json(tmp_path_factory):
    url, server = serve("qwen2.5-coder-0.5b-instruct", tmp_path_factory)
    with server:
        check_reader(url)
        # The context-json-qwen0.5b adapter (the hybrid routes): JSON citing its source
        # by itself (add_markers is off on these routes).
        hybrid = ask(url, "hybrid-strict", FOUNDED)
        body = json.loads(hybrid["choices"][0]["message"]["content"])
        assert set(body) == {"answer", "confidence"}, body
        assert "2011" in body["answer"] and "[1]" in body["answer"], body
        assert hybrid["citations"][0]["doc_id"] == "company-overview"


@pytest.mark.slow
@pytest.mark.own_cluster
def test_qwen_1_5b_starts_with_default_engine_settings_and_reads(tmp_path_factory):
    url, server = serve("qwen2.5-coder-1.5b-instruct", tmp_path_factory)
    with server:
        check_reader(url)
