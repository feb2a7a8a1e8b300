"""Fuzzing: schemathesis generates requests from the ingress's own OpenAPI document (every
endpoint, valid and invalid bodies and parameters) and sends them to the real server.

Checked on every response: no 5xx, and every error is OpenAI's error JSON. The number
of cases is bounded (FUZZ_EXAMPLES per operation, seeded, so a run is repeatable);
generation requests are kept short (max_tokens <= 4, n <= 2) and half of them name a
real route, so that the engine path is fuzzed too and not only the 404 of a random
model id. Indexes the fuzzer creates are deleted afterwards.

Each case is sent with one of three keys (tests/support/keys.py): the admin key, a
tenant key (indexes `fuzz-*`, documents with metadata tenant "a" only) and a key that
may call the `base` route only. Half of the cases that name an index name
`fuzz-shared`, which holds one document of tenant "a" and one of tenant "b"; nothing the
tenant key gets back may hold the "b" document's marker, and nothing the narrow key gets
back may name another route or an index.
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from serving.ingress import app
from tests.support.keys import ADMIN, AUTH, READER, TENANT, headers

pytestmark = pytest.mark.e2e

FUZZ_EXAMPLES = int(os.environ.get("LORAG_FUZZ_EXAMPLES", "25"))
GENERATION = {"/v1/chat/completions", "/v1/completions"}
ROUTES = ["base", "rag", "tuned", "hybrid"]
SHAPE = {"message", "type", "param", "code"}
SHARED = "fuzz-shared"
MARKER_B = "zq-fuzz-marker-of-tenant-b"
KEYS = [ADMIN, TENANT, READER]

schema = schemathesis.openapi.from_dict(app.openapi())


@pytest.fixture(scope="module", autouse=True)
def remove_fuzzed_indexes(server_url):
    def names() -> set[str]:
        r = httpx.get(f"{server_url}/v1/indexes", timeout=120, headers=AUTH)
        return {i["name"] for i in r.json()["data"]}

    before = names()
    r = httpx.post(f"{server_url}/v1/indexes", json={"name": SHARED}, timeout=120,
                   headers=AUTH)
    assert r.status_code == 201, r.text
    r = httpx.post(f"{server_url}/v1/indexes/{SHARED}/documents", timeout=120, headers=AUTH,
                   json={"documents": [
                       {"doc_id": "a-doc", "text": "Tenant a's fuzz document.",
                        "metadata": {"tenant": "a"}},
                       {"doc_id": "b-doc", "text": f"Tenant b's document: {MARKER_B}.",
                        "metadata": {"tenant": "b"}}]})
    assert r.status_code == 200, r.text
    yield
    for name in names() - before:
        httpx.delete(f"{server_url}/v1/indexes/{name}", timeout=120, headers=AUTH)


def _bound(case) -> None:
    body = case.body
    if case.path not in GENERATION or not isinstance(body, dict):
        return
    for param in ("max_tokens", "max_completion_tokens"):
        if isinstance(body.get(param), int) and not isinstance(body[param], bool):
            body[param] = max(1, min(body[param], 4)) if body[param] >= 1 else body[param]
    if body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
        body["max_tokens"] = 4
    if isinstance(body.get("n"), int) and body["n"] > 2:
        body["n"] = 2
    if "model" in body and len(repr(body)) % 2 == 0:  # half of them: a real route
        body["model"] = ROUTES[len(repr(body)) % len(ROUTES)]


def _aim(case) -> str:
    """The key this case is sent with; half the cases naming an index name fuzz-shared."""
    seed = len(repr(case.body)) + len(case.formatted_path)
    params = case.path_parameters or {}
    if "name" in params and case.path.startswith("/v1/indexes") and seed % 2 == 0:
        params["name"] = SHARED
    return KEYS[seed % len(KEYS)]


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_get_no_5xx_and_openai_errors(case, server_url):
    _bound(case)
    key = _aim(case)
    response = case.call(base_url=server_url, timeout=300, headers=headers(key))
    who = {ADMIN: "admin", TENANT: "tenant", READER: "reader"}[key]
    where = f"{who}: {case.method} {case.formatted_path} body={case.body!r:.300}"
    assert response.status_code < 500, f"{where} -> {response.status_code}: {response.text}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == SHAPE, f"{where}: {body}"
    if key == TENANT:
        assert MARKER_B not in response.text and "b-doc" not in response.text, where
    # /health and /metrics are open (probes, Prometheus) and name every deployment and
    # route: fenced off from clients (docs/security.md), not a key's view
    if key == READER and response.status_code < 400 and case.path.startswith("/v1"):
        assert not any(f'"{r}"' in response.text for r in ROUTES if r != "base"), where
        assert SHARED not in response.text, where
