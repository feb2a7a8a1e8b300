"""The evaluation run, request by request, against an in-process fake server."""

import pytest

from evaluation.evaluate import EvalOptions, evaluate
from evaluation.runner import EvalError, Route, route_exclusions

from .fake_server import DOCS, FORMATS, QUESTIONS, FakeServer

CHUNKING = {"unit": "chars", "size": 300, "overlap": 20}


def options(tmp_path, **kw):
    return EvalOptions(corpus=tmp_path, questions=tmp_path / "q.jsonl", index_name="eval-t",
                       config_indexes={"kb": {"type": "hnsw", "embedder": "e1",
                                              "chunking": CHUNKING}}, **kw)


async def run(tmp_path, server, **kw):
    return await evaluate("http://fake", options(tmp_path, **kw), QUESTIONS, FORMATS, DOCS,
                          transport=server.transport())


async def test_every_question_goes_through_every_route_on_a_fresh_index(tmp_path):
    server = FakeServer()
    result = await run(tmp_path, server)
    # the fresh index copies the route's index: server's type/embedder, config's chunking
    assert server.created == [{"name": "eval-t", "type": "flat", "embedder": "e1",
                               "chunking": CHUNKING}]
    assert server.uploaded == ["alpha", "beta", "gamma"] and server.deleted == ["eval-t"]
    asked = {(b["model"], b["messages"][0]["content"]) for b in server.chat_bodies}
    assert len(asked) == len(server.chat_bodies) == 3 * 4
    for body in server.chat_bodies:
        assert body["temperature"] == 0 and "max_tokens" not in body
        assert body.get("index") == (None if body["model"] == "base" else "eval-t")
    assert list(result["routes"]) == ["base", "rag", "hybrid"]
    assert result["retrieval"]["recall"] == 0.75 and result["retrieval"]["all_found"] == 0.5
    # recall@k searches leave out what the retrieval routes leave out of their sources
    assert result["retrieval"]["exclude_status"] == ["draft", "superseded"]
    assert [b["exclude_status"] for b in server.search_bodies] == [["draft", "superseded"]] * 2

    rag, hybrid, base = (result["routes"][r]["metrics"] for r in ("rag", "hybrid", "base"))
    for m in (rag, hybrid):
        assert m["accuracy"] == {"overall": 1.0, "single": 1.0, "multi": 1.0,
                                 "unanswerable": 1.0}
        assert (m["citation_precision"], m["cited_sources"]) == (0.5, 2)
        assert m["recall_at_k"] == 0.75 and m["errors"] == 0
    assert (rag["format_validity"], rag["format_accuracy"]) == (0.0, 0.0)
    assert (hybrid["format_validity"], hybrid["format_accuracy"]) == (1.0, 1.0)
    assert base["accuracy"] == {"overall": 0.3333, "single": 0.0, "multi": 0.0,
                                "unanswerable": 1.0}
    assert base["errors"] == 1 and base["recall_at_k"] is None
    assert base["citation_precision"] is None and base["cited_sources"] is None
    failed = [r for r in result["routes"]["base"]["questions"] if r["error"]]
    assert failed[0]["id"] == "m1" and failed[0]["error"] == "500: engine died"
    record = result["routes"]["hybrid"]["questions"][0]
    assert record["cited_doc_ids"] == ["alpha"]
    assert record["retrieved_doc_ids"] == ["alpha", "gamma"]
    assert record["latency_s"] >= 0 and record["completion_tokens"] == 7
    assert record["grounding"] == "passed"
    assert result["routes"]["base"]["questions"][0]["grounding"] is None
    server.index_spec = {"type": "hnsw", "embedder": "e2", "search": {"mode": "dense"}}
    await run(tmp_path / "again", server)  # a server that reports its spec: copied as is
    assert server.created[-1] == {"name": "eval-t", **server.index_spec}


async def test_routes_and_max_tokens_can_be_chosen(tmp_path):
    server = FakeServer()
    result = await run(tmp_path, server, routes=["hybrid"], max_tokens=32, concurrency=1)
    assert list(result["routes"]) == ["hybrid"]
    assert {b["max_tokens"] for b in server.chat_bodies} == {32}


async def test_an_unknown_route_is_fatal_before_anything_is_created(tmp_path):
    server = FakeServer()
    with pytest.raises(EvalError, match="unknown route.*nope.*base, rag, hybrid"):
        await run(tmp_path, server, routes=["rag", "nope"])
    assert server.created == []


async def test_index_set_up_failures_are_fatal_and_clean_up(tmp_path):
    with pytest.raises(EvalError, match="POST /v1/indexes failed: 409: index exists"):
        await run(tmp_path, FakeServer(fail_create=True))
    server = FakeServer(fail_upload=True)
    with pytest.raises(EvalError, match="documents failed: 400: bad document"):
        await run(tmp_path, server)
    assert server.deleted == ["eval-t"] and server.chat_bodies == []


async def test_keep_index(tmp_path):
    server = FakeServer()
    result = await run(tmp_path, server, keep_index=True, routes=["base"])
    assert server.deleted == [] and result["config"]["index_kept"]


def test_recall_leaves_out_the_first_retrieval_routes_statuses(caplog):
    def route(name, retrieval):
        return Route(name, retrieval, None)

    assert route_exclusions([route("base", None)]) == []
    same = [route("rag", {"index": "kb", "exclude_status": ["draft"]}),
            route("hybrid", {"index": "kb", "exclude_status": ["draft"]})]
    assert route_exclusions([route("base", None), *same]) == ["draft"] and not caplog.records
    differ = [same[0], route("all", {"index": "kb", "exclude_status": []})]
    assert route_exclusions(differ) == ["draft"]
    assert "different document statuses" in caplog.text
    assert route_exclusions([route("old", {"index": "kb"})]) == []  # an older server
