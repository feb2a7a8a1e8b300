"""The four routes of the default config, end to end: base, rag, tuned, hybrid.

The rag and hybrid routes answer from the shipped sample knowledge base (the
fictional Helix Verdant Cooperative, so the model cannot know the facts) and
cite their sources; see README "Routes" and docs/routes.md "Citations".
"""

import json
import re
import uuid

import pytest

MARKER = re.compile(r"\[(\d+)\]")
OSTBRIDGE_WATER = "What is the water recirculation rate at the Ostbridge farm?"


def ask(client, model, question, **kwargs):
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": question}], **kwargs)


def citations_of(obj):
    return (obj.model_extra or {}).get("citations")


def cited_docs(text, citations):
    """doc_ids of the sources the inline markers [n] refer to."""
    numbers = {int(n) for n in MARKER.findall(text)}
    assert numbers, f"no inline citation marker in {text!r}"
    assert all(1 <= n <= len(citations) for n in numbers), (text, citations)
    return {citations[n - 1]["doc_id"] for n in numbers}


def test_rag_answers_from_the_knowledge_base_and_cites_the_doc(client):
    resp = ask(client, "rag", OSTBRIDGE_WATER)
    assert resp.model == "rag"  # the route answers under its own name, not the engine's
    text = resp.choices[0].message.content
    assert "91" in text
    citations = citations_of(resp)
    assert citations and [c["number"] for c in citations] == list(range(1, len(citations) + 1))
    for c in citations:
        assert c["index"] == "helix"
        assert {"doc_id", "chunk_id", "title", "snippet", "score"} <= set(c)
        assert c["chunk_id"].startswith(c["doc_id"] + "#")
    assert citations[0]["doc_id"] == "site-ostbridge"
    assert "site-ostbridge" in cited_docs(text, citations)
    scores = [c["score"] for c in citations]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.2  # min_score


def test_rag_sources_leave_out_superseded_and_draft_documents(client, http):
    """The 2023 travel policy says €110 a night where the current one says €135: the
    index marks it superseded at seeding and the route never puts it in a prompt."""
    question = "How much are hotel costs capped at per night under the travel policy?"
    hits = http.post("/v1/indexes/helix/search", json={"query": question, "top_k": 4}).json()
    assert "travel-policy-2023" in {h["doc_id"] for h in hits["data"]}  # search keeps it
    resp = ask(client, "rag", question, max_tokens=24)
    sources = {c["doc_id"] for c in citations_of(resp)}
    assert "travel-policy" in sources
    assert not sources & {"travel-policy-2023", "product-catalogue-draft"}
    doc = http.get("/v1/indexes/helix/documents/travel-policy-2023").json()
    assert doc["metadata"]["status"] == "superseded"


def _sample(http, name, **labels):
    """The value of the /metrics sample `name` with `labels` (0 before the first)."""
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(http.get("/metrics").text):
        for sample in fam.samples:
            if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def _metric_count(http, family, **labels):
    return _sample(http, f"{family}_count", **labels)


def _counter(http, family, **labels):
    return _sample(http, f"{family}_total", **labels)


def test_metrics_time_what_a_retrieval_route_adds(client, http):
    """Retrieval (ingress) and prompt building (LLM replica): what a rag request adds
    before the engine starts, as bench_rag_overhead reports it."""
    before = (_metric_count(http, "lorag_retrieval_duration_seconds", route="rag"),
              _metric_count(http, "lorag_route_prompt_duration_seconds", model="smollm2"))
    ask(client, "rag", OSTBRIDGE_WATER, max_tokens=2)
    after = (_metric_count(http, "lorag_retrieval_duration_seconds", route="rag"),
             _metric_count(http, "lorag_route_prompt_duration_seconds", model="smollm2"))
    assert after[0] == before[0] + 1 and after[1] >= before[1] + 1


def test_a_reranking_route_keeps_4_of_8_candidates_and_times_it(client, http):
    """retrieval.rerank (the test config's rag-reranked route): the retriever scores 8
    chunks with SmolLM2 and keeps 4, in similarity order, each with its rerank_score."""
    before = _metric_count(http, "lorag_rerank_duration_seconds", route="rag-reranked")
    resp = ask(client, "rag-reranked", OSTBRIDGE_WATER, max_tokens=2)
    citations = citations_of(resp)
    assert len(citations) == 4 and all(-30 < c["rerank_score"] < 0 for c in citations)
    assert [c["score"] for c in citations] == sorted((c["score"] for c in citations),
                                                      reverse=True)
    assert "site-ostbridge" in {c["doc_id"] for c in citations}
    after = _metric_count(http, "lorag_rerank_duration_seconds", route="rag-reranked")
    assert after == before + 1


def test_base_route_has_no_retrieval_and_no_citations(client):
    resp = ask(client, "base", OSTBRIDGE_WATER, max_tokens=24)
    assert citations_of(resp) is None


def test_streaming_sends_citations_before_the_first_token(client, http):
    passed = _counter(http, "lorag_grounding_checks", route="rag", verdict="passed")
    stream = ask(client, "rag", OSTBRIDGE_WATER, stream=True,
                 stream_options={"include_usage": True})
    chunks = list(stream)
    assert {c.model for c in chunks} == {"rag"}
    first = chunks[0]
    assert citations_of(first) and citations_of(first)[0]["doc_id"] == "site-ostbridge"
    assert not (first.choices and first.choices[0].delta.content)  # no token yet
    assert all(citations_of(c) is None for c in chunks[1:])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "91" in text and MARKER.search(text)
    assert chunks[-1].usage.completion_tokens > 0
    # the grounding check ran on the whole streamed text: its verdict is on the last chunk
    finished = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finished) == 1 and finished[0].model_extra["grounding"] == "passed"
    assert _counter(http, "lorag_grounding_checks", route="rag", verdict="passed") == passed + 1


def test_rag_says_it_does_not_know_when_nothing_is_relevant(client, http):
    resp = ask(client, "rag", "Who painted the Mona Lisa?")
    assert resp.choices[0].message.content.startswith("I don't know")
    assert citations_of(resp) == [] and resp.usage.completion_tokens == 0
    stream = list(ask(client, "rag", "Who painted the Mona Lisa?", stream=True))
    assert citations_of(stream[0]) == []
    assert "".join(c.choices[0].delta.content or "" for c in stream).startswith("I don't know")


def test_updating_a_document_changes_the_next_answer_without_restart(client, http):
    doc_id = f"parking-{uuid.uuid4().hex[:6]}"
    question = "What is the access code of the Lumen Street car park of Helix Verdant?"

    def put(code):
        r = http.post("/v1/indexes/helix/documents", json={"documents": [{
            "doc_id": doc_id, "title": "Lumen Street car park",
            "text": f"# Lumen Street car park\n\nThe access code of the Lumen Street car park "
                    f"of Helix Verdant is {code}. Staff enter it at the barrier."}]})
        assert r.status_code == 200, r.text

    try:
        put("PK-4471")
        first = ask(client, "rag", question)
        assert "4471" in first.choices[0].message.content
        assert doc_id in {c["doc_id"] for c in citations_of(first)}
        put("PK-9902")
        second = ask(client, "rag", question)
        assert "9902" in second.choices[0].message.content
        assert "4471" not in second.choices[0].message.content
        assert all("4471" not in c["snippet"] for c in citations_of(second))
    finally:
        http.delete(f"/v1/indexes/helix/documents/{doc_id}")


def test_hybrid_returns_json_with_a_cited_answer(client, http):
    passed = _counter(http, "lorag_grounding_checks", route="hybrid", verdict="passed")
    resp = ask(client, "hybrid", OSTBRIDGE_WATER)
    body = json.loads(resp.choices[0].message.content)
    assert set(body) == {"answer", "confidence"}
    assert body["confidence"] in {"high", "medium", "low"}
    assert "91" in body["answer"]
    assert "site-ostbridge" in cited_docs(body["answer"], citations_of(resp))
    assert resp.choices[0].model_extra["grounding"] == "passed"  # the check ran and kept it
    assert _counter(http, "lorag_grounding_checks", route="hybrid", verdict="passed") == passed + 1


def test_tuned_route_answers_in_json_without_retrieval(client):
    resp = ask(client, "tuned", "What is the capital of France?", temperature=0, max_tokens=40)
    body = json.loads(resp.choices[0].message.content)
    assert "paris" in body["answer"].lower() and citations_of(resp) is None


def test_models_list_what_each_route_combines(client):
    models = {m.id: m.model_extra["lorag"] for m in client.models.list().data}
    assert models["base"]["adapter"] is None and models["base"]["retrieval"] is None
    assert models["rag"]["retrieval"]["index"] == "helix" and models["rag"]["adapter"] is None
    assert models["tuned"]["adapter"] == "json-format" and models["tuned"]["retrieval"] is None
    assert models["hybrid"]["adapter"] == "context-json"
    assert models["hybrid"]["retrieval"]["top_k"] == 4
    assert models["rag-reranked"]["retrieval"]["rerank"] == {
        "model": "smollm2-135m-instruct", "candidates": 8}
    assert models["rag"]["retrieval"]["rerank"] is None
    assert {models[r]["deployment"] for r in ("base", "rag", "tuned", "hybrid")} == {
        "LLM:smollm2"}
    assert models["json-format"]["kind"] == "adapter"  # loaded adapters are listed too


def test_ray_serve_runs_the_configured_deployments(http):
    from serving.config import load_config

    cfg = load_config()
    deps = {d["name"]: d for d in http.get("/v1/deployments").json()["data"]}
    llm = deps["LLM:smollm2"]
    assert llm["status"] == "HEALTHY"
    assert llm["replicas"] == {"RUNNING": cfg.models["smollm2"].deployment.num_replicas}
    # the default config's four routes, and rag-reranked of the test config (conftest)
    assert sorted(llm["routes"]) == ["base", "hybrid", "rag", "rag-reranked", "tuned"]
    assert llm["ray_actor_options"]["num_cpus"] == cfg.models["smollm2"].deployment.num_cpus
    assert deps["Retriever"]["replicas"] == {
        "RUNNING": cfg.retrieval.deployment.num_replicas}
    assert deps["Ingress"]["replicas"] == {
        "RUNNING": cfg.server.ingress.deployment.num_replicas}


@pytest.mark.parametrize("path, code", [
    ("/v1/indexes/helix", "index_in_use"), ("/v1/adapters/json-format", "adapter_in_use")])
def test_what_a_route_uses_cannot_be_deleted(http, path, code):
    r = http.delete(path)
    assert r.status_code == 409 and r.json()["error"]["code"] == code


def test_completions_endpoint_on_a_rag_route_is_a_clear_400(http):
    r = http.post("/v1/completions", json={"model": "rag", "prompt": "hello"})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "model" and "chat/completions" in r.text
