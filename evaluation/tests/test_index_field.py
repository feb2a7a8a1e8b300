"""The chat body's `index` field (what `lorag eval` points routes at), without an engine:
the ingress logic with fake deployment handles."""

from types import SimpleNamespace

import pytest

from serving.api import OpenAIService
from serving.config import load_config
from serving.errors import LoragError, NotFoundError, error_to_wire
from tests.support.ingress import FakeLLM, chat


class FakeRetriever:
    def __init__(self):
        self.searched, self.excluded = [], []
        self.call = SimpleNamespace(remote=self._call)

    def options(self, **_):
        return self

    async def _call(self, method, name, query, top_k, filter_, exclude_status, owner=None):
        self.searched.append(name)
        self.excluded.append(exclude_status)
        if name not in ("helix", "fresh"):
            return {"error": error_to_wire(NotFoundError(
                f"index {name!r} does not exist.", param="index", code="index_not_found"))}
        return {"result": [{"doc_id": f"{name}-doc", "chunk_id": f"{name}-doc#0",
                            "title": "t", "section": "", "text": "x", "score": 0.9}]}


class FakeAdapters:
    async def resolve(self, name):
        if name not in ("json-format", "context-json"):
            return None
        # The fields of a registry record (adapters.service.record) the ingress reads.
        return {"name": name, "version": 1, "served_id": f"{name}@1", "base_model": "smollm2"}


@pytest.fixture
def service():
    llm, retriever = FakeLLM(), FakeRetriever()
    svc = OpenAIService(load_config(), {"smollm2": llm}, retriever, FakeAdapters())
    return svc, llm, retriever


@pytest.mark.parametrize("route", ["rag", "hybrid"])
async def test_index_replaces_the_routes_index_for_one_request(service, route):
    svc, llm, retriever = service
    assert (await chat(svc, model=route, index="fresh")).status_code == 200
    assert (await chat(svc, model=route)).status_code == 200
    assert retriever.searched == ["fresh", "helix"]
    assert retriever.excluded == [["draft", "superseded"]] * 2  # the route's default
    assert [p.index for p in llm.prompts] == ["fresh", "helix"]  # what citations name
    assert llm.prompts[0].hits[0]["doc_id"] == "fresh-doc"
    assert (await chat(svc, model=route, index=None)).status_code == 200  # null: unset
    assert retriever.searched[-1] == "helix"


@pytest.mark.parametrize("body, status, param, code", [
    ({"model": "rag", "index": 7}, 400, "index", "invalid_type"),
    ({"model": "rag", "index": ["fresh"]}, 400, "index", "invalid_type"),
    ({"model": "rag", "index": ""}, 400, "index", "invalid_type"),
    ({"model": "base", "index": "fresh"}, 400, "index", "unsupported_parameter"),
    ({"model": "tuned", "index": "fresh"}, 400, "index", "unsupported_parameter"),
    ({"model": "json-format", "index": "fresh"}, 400, "index", "unsupported_parameter"),
    ({"model": "rag", "index": "nope"}, 404, "index", "index_not_found"),
    ({"model": "nope", "index": "fresh"}, 404, "model", "model_not_found"),
])
async def test_index_errors(service, body, status, param, code):
    svc, llm, _ = service
    with pytest.raises(LoragError) as err:
        await chat(svc, **body)
    assert (err.value.status, err.value.param, err.value.code) == (status, param, code)
    assert err.value.to_body()["error"]["type"] == "invalid_request_error"
    assert llm.prompts == []  # the engine never saw it
