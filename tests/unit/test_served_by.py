"""`served_by` (which replica answered, in `storage: replicated`) is the operator's view:
admin keys, and everyone with auth off, get it; tenants' keys do not."""

from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from serving.auth import Grants
from serving.config import load_config
from serving.retrieval_api import RetrievalAPI

REPLICA = {"node_id": "n1", "role": "copy", "replica_id": "r1"}
KEYS = {"admin": Grants(admin=True), "reader": Grants(),
        "tenant": Grants(filter={"tenant": "a"})}


class _Retriever:
    def __init__(self, replica):
        self.replica = replica
        self.call = SimpleNamespace(remote=self._call)

    async def _call(self, method, name, *args):
        value = [{"doc_id": "d1", "score": 1.0}] if method == "search" else {"documents": 1}
        return {"result": value, **({"replica": self.replica} if self.replica else {})}


def client(replica) -> TestClient:
    api = RetrievalAPI(load_config(None), _Retriever(replica))
    app = FastAPI()

    @app.middleware("http")
    async def key(request: Request, call_next):  # what the auth middleware leaves
        name = request.headers.get("x-key")
        if name:
            request.state.api_key = SimpleNamespace(grants=KEYS[name])
        return await call_next(request)

    @app.post("/v1/indexes/{name}/search")
    async def search(name: str, request: Request):
        return await api.search(request, name)

    @app.get("/v1/indexes/{name}")
    async def stats(name: str, request: Request):
        return await api.get_index(request, name)

    return TestClient(app)


@pytest.mark.parametrize("key,shown", [(None, True), ("admin", True), ("reader", False),
                                       ("tenant", False)])
def test_served_by_is_for_admins(key, shown):
    c = client(REPLICA)
    headers = {"x-key": key} if key else {}
    found = c.post("/v1/indexes/kb/search", json={"query": "q"}, headers=headers).json()
    assert found["data"] == [{"doc_id": "d1", "score": 1.0}]
    assert ("served_by" in found) is shown
    if shown:
        assert found["served_by"] == REPLICA
    assert ("served_by" in c.get("/v1/indexes/kb", headers=headers).json()) is shown


def test_no_served_by_in_the_shared_mode():
    found = client(None).post("/v1/indexes/kb/search", json={"query": "q"}).json()
    assert "served_by" not in found
