"""Two tenants on one server and one index, attacked as a tenant would: through every
endpoint and field, tenant A tries to read, list, infer or change tenant B's documents,
routes, indexes and adapters. The whole app runs on Ray Serve with the real retriever
and adapter registry; the engine is a fake that answers with the sources it was given.

What a key may not see must not exist for it: the same 404 body as a name that does
not exist. Keys are revoked by rewriting the key file, and admin writes are audited.
"""

import json
import os
import time

import httpx
import pytest

from serving import rag
from serving.config import parse_config
from serving.envelope import ok
from serving.lora import AdapterSlots
from tests.serve.fakes import FakeLLMServerBase, serve_app

pytestmark = pytest.mark.own_cluster  # see tests/conftest.py

OPS, KEY_A, KEY_B = ("sk-lorag-tenants-ops-000000000000", "sk-lorag-tenants-a-00000000000000",
                     "sk-lorag-tenants-b-00000000000000")
READER_A = "sk-lorag-tenants-reader-a-0000000"
SECRET_B = "Bravo ferry code 7731: the night ferry leaves from pier nine."
RELOAD_S = 1.0


def tenant(name: str, key: str) -> dict:
    return {"name": f"team-{name}", "key": key, "routes": ["base", "rag", "rag-hops",
                                                          f"{name}-*"],
            "indexes": ["shared", f"{name}-*"], "adapters": [f"{name}-*"],
            "filter": {"tenant": name},
            "manages": {"indexes": ["shared", f"{name}-*"], "adapters": [f"{name}-*"]}}


KEYS = [{"name": "ops", "scopes": ["admin"], "key": OPS}, tenant("a", KEY_A),
        tenant("b", KEY_B),
        {"name": "reader-a", "key": READER_A, "routes": ["rag"], "indexes": ["shared"],
         "adapters": [], "filter": {"tenant": "a"}}]


class FakeEngine:
    async def add_lora(self, request):
        pass

    async def remove_lora(self, lora_id):
        pass


class SourcesLLM(FakeLLMServerBase):
    """Answers with the doc_ids of its sources and their citations, as LLMServer would."""

    async def start(self):
        self.adapters = AdapterSlots(FakeEngine(), {})

    async def chat(self, request, prompt=None):
        hits = list(prompt.hits or []) if prompt is not None else []
        citations = [rag.citation(n, prompt.index, h) for n, h in enumerate(hits, 1)]
        text = " ".join(h["doc_id"] for h in hits) or "no sources"
        if request.stream:
            first = f'data: {json.dumps({"choices": [{"delta": {"content": text}}]})}\n\n'
            yield rag.with_citations_first_event(first, citations) if prompt else first
            yield "data: [DONE]\n\n"
            return
        body = {"object": "chat.completion", "model": request.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        if prompt is not None and prompt.hits is not None:
            body["citations"] = citations
        yield ok(body)

    async def completions(self, request, prompt=None):
        yield ok({"object": "text_completion", "model": request.model,
                  "choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}]})


def config(keys_file, audit_file, adapter_root) -> dict:
    retrieval = {"index": "shared", "top_k": 6, "min_score": -1.0}
    return {
        "server": {"app_name": "tenants",
                   # two ingress replicas: each must honour a revocation on its own
                   "ingress": {"deployment": {"num_replicas": 2, "num_cpus": 0.1},
                               "request_timeout_s": 30},
                   "auth": {"keys_file": keys_file, "reload_interval_s": RELOAD_S},
                   "audit": {"path": audit_file}},
        "models": {"smol": {"source": "builtin:smollm2-135m-instruct",
                            "engine": {"enable_lora": True, "max_lora_rank": 8},
                            "deployment": {"num_replicas": 1, "num_cpus": 0.1}}},
        "adapter_store": {"local_roots": [adapter_root]},
        "indexes": {"shared": {"type": "flat"}},
        "retrieval": {"deployment": {"num_replicas": 1, "num_cpus": 0.1}},
        "routes": [
            {"name": "base", "model": "smol"},
            {"name": "rag", "model": "smol", "retrieval": retrieval},
            {"name": "rag-hops", "model": "smol", "retrieval": {**retrieval, "hops": 2,
                                                                "top_k": 3, "hop_k": 2}},
            {"name": "a-chat", "model": "smol"},
            {"name": "b-chat", "model": "smol"},
        ],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tests.support.lora_factory import make_lora

    work = tmp_path_factory.mktemp("tenants")
    keys_file, audit_file = work / "keys.json", work / "audit.jsonl"
    keys_file.write_text(json.dumps(KEYS))
    adapter_root = work / "adapters"
    make_lora(adapter_root / "tone", seed=1)
    cfg = parse_config(config(str(keys_file), str(audit_file), str(adapter_root)))
    with serve_app(cfg, SourcesLLM, "tenants", str(work / "data")) as url:
        deadline = time.monotonic() + 180
        while call(url, OPS, "GET", "/health").status_code != 200:
            assert time.monotonic() < deadline, "the server never became healthy"
            time.sleep(1)
        setup(url, adapter_root)
        yield {"url": url, "keys_file": keys_file, "audit_file": audit_file,
               "adapters": adapter_root}


def call(url, key, method, path, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, f"{url}{path}", headers=headers, timeout=60, **kw)


def made(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


def docs(*items):
    return {"documents": [{"doc_id": d, "text": t} for d, t in items]}


def setup(url, adapter_root):
    made(call(url, KEY_B, "POST", "/v1/indexes", json={"name": "b-private", "type": "flat"}),
         201)
    made(call(url, KEY_A, "POST", "/v1/indexes/shared/documents", json=docs(
        ("a1", "Alpha ferry timetable: the morning ferry leaves at seven."),
        ("a2", "Alpha ferry fares: a single ticket costs four euros."))))
    made(call(url, KEY_B, "POST", "/v1/indexes/shared/documents", json=docs(
        ("b1", SECRET_B), ("b2", "Bravo ferry fares are secret too."))))
    made(call(url, KEY_B, "POST", "/v1/indexes/b-private/documents", json=docs(
        ("p1", "Bravo private notes about the ferry."))))
    for key, name in ((KEY_A, "a-tone"), (KEY_B, "b-tone")):
        made(call(url, key, "POST", "/v1/adapters",
                  json={"name": name, "source": str(adapter_root / "tone")}), 201)


def the_same_404(hidden: httpx.Response, missing: httpx.Response, hidden_name: str,
                 missing_name: str) -> None:
    """A name the key may not see answers exactly as a name that does not exist."""
    assert hidden.status_code == missing.status_code == 404, (hidden.text, missing.text)
    assert hidden.json() == json.loads(missing.text.replace(missing_name, hidden_name))


def doc_ids(hits) -> set[str]:
    return {h["doc_id"] for h in hits}


def test_indexes_a_key_may_not_read_do_not_exist_for_it(server):
    url = server["url"]
    listed = [i["name"] for i in made(call(url, KEY_A, "GET", "/v1/indexes"))["data"]]
    assert listed == ["shared"]
    assert sorted(i["name"] for i in made(call(url, OPS, "GET", "/v1/indexes"))["data"]) == [
        "b-private", "shared"]
    body = {"query": "ferry"}
    for method, suffix, kw in [
            ("GET", "", {}), ("DELETE", "", {}), ("GET", "/documents", {}),
            ("GET", "/documents/p1", {}), ("DELETE", "/documents/p1", {}),
            ("POST", "/documents", {"json": docs(("x", "overwrite"))}),
            ("POST", "/files", {"files": {"files": ("x.md", b"# x\n\ntext")}}),
            ("POST", "/search", {"json": body})]:
        hidden = call(url, KEY_A, method, f"/v1/indexes/b-private{suffix}", **kw)
        missing = call(url, KEY_A, method, f"/v1/indexes/nothing-here{suffix}", **kw)
        the_same_404(hidden, missing, "b-private", "nothing-here")
        # and a missing name inside A's own namespace says the same (a filtered key may
        # not delete whole indexes, whether they exist or not)
        own = call(url, KEY_A, method, f"/v1/indexes/a-missing{suffix}", **kw)
        if (method, suffix) == ("DELETE", ""):
            assert own.status_code == 403, own.text
        else:
            the_same_404(own, missing, "a-missing", "nothing-here")
    # The chat `index` field, streaming or not.
    for stream in (False, True):
        chat = {"model": "rag", "stream": stream,
                "messages": [{"role": "user", "content": "ferry"}]}
        the_same_404(call(url, KEY_A, "POST", "/v1/chat/completions",
                          json={**chat, "index": "b-private"}),
                     call(url, KEY_A, "POST", "/v1/chat/completions",
                          json={**chat, "index": "nothing-here"}), "b-private", "nothing-here")
    assert made(call(url, KEY_B, "GET", "/v1/indexes/b-private/documents"))["data"][0][
        "doc_id"] == "p1"


def test_a_shared_index_shows_each_tenant_only_its_own_documents(server):
    url = server["url"]
    search = "/v1/indexes/shared/search"
    assert doc_ids(made(call(url, KEY_A, "POST", search, json={"query": "ferry", "top_k": 10}))[
        "data"]) == {"a1", "a2"}
    assert doc_ids(made(call(url, KEY_B, "POST", search, json={"query": "ferry", "top_k": 10}))[
        "data"]) == {"b1", "b2"}
    # Filters that try to widen the key's own: they can only narrow it.
    for flt in ({"tenant": "b"}, {"tenant": {"$ne": "a"}}, {"tenant": {"$in": ["a", "b"]},
                                                            "doc_id": "b1"},
                {"doc_id": {"$in": ["b1", "b2"]}}, {"$and": [{"tenant": "b"}]}):
        hits = made(call(url, KEY_A, "POST", search, json={"query": SECRET_B, "filter": flt,
                                                           "top_k": 10}))["data"]
        assert not doc_ids(hits) & {"b1", "b2"}, flt
    for flt in ({"$or": [{"tenant": "a"}, {"tenant": "b"}]}, {"$not": {"tenant": "a"}},
                {"tenant": {"$regex": ".*"}}, {"$and": [{"$or": [{"tenant": "b"}]}]}):
        refused = call(url, KEY_A, "POST", search, json={"query": "x", "filter": flt})
        assert refused.status_code == 400 and refused.json()["error"]["code"] == \
            "invalid_filter", flt
    # Documents: listing, reads, deletes by guessed doc_id.
    listed = made(call(url, KEY_A, "GET", "/v1/indexes/shared/documents"))
    assert [d["doc_id"] for d in listed["data"]] == ["a1", "a2"]
    assert made(call(url, KEY_A, "GET", "/v1/indexes/shared/documents?after=a2"))["data"] == []
    for method in ("GET", "DELETE"):
        the_same_404(call(url, KEY_A, method, "/v1/indexes/shared/documents/b1"),
                     call(url, KEY_A, method, "/v1/indexes/shared/documents/zz"), "b1", "zz")
    stats = made(call(url, KEY_A, "GET", "/v1/indexes/shared"))
    assert stats["documents"] == 2 and "vectors" not in stats and "change_seq" not in stats
    assert made(call(url, OPS, "GET", "/v1/indexes/shared"))["documents"] == 4


def test_a_tenant_cannot_change_the_other_tenants_documents(server):
    url = server["url"]
    # Each key writes doc_ids in its own namespace: B's b1 is stored as tenant=b/b1 (what
    # an admin sees), and A's "b1" is another document, A's own.
    before = made(call(url, OPS, "GET", "/v1/indexes/shared/documents/tenant=b/b1"))
    own = made(call(url, KEY_A, "POST", "/v1/indexes/shared/documents",
                    json=docs(("b1", "Written by A."))))
    assert own["data"] == [{"doc_id": "b1", "status": "added", "chunks": 1}]
    upload = made(call(url, KEY_A, "POST", "/v1/indexes/shared/files",
                       files={"files": ("b1.md", b"# b1\n\nA's upload.")}))
    assert upload["data"][0]["doc_id"] == "b1"   # file names are doc ids
    for forged in ("tenant=b/b1", "../b1", "..\\b1"):
        refused = call(url, KEY_A, "POST", "/v1/indexes/shared/documents",
                       json=docs((forged, "x")))
        assert refused.status_code == 400, (forged, refused.text)
    stamped_b = call(url, KEY_A, "POST", "/v1/indexes/shared/documents", json={
        "documents": [{"doc_id": "a3", "text": "x", "metadata": {"tenant": "b"}}]})
    assert stamped_b.status_code == 400 and "metadata.tenant" in stamped_b.text
    after = made(call(url, OPS, "GET", "/v1/indexes/shared/documents/tenant=b/b1"))
    assert after["content_hash"] == before["content_hash"]
    assert made(call(url, KEY_B, "GET", "/v1/indexes/shared/documents/b1"))[
        "content_hash"] == before["content_hash"]
    assert made(call(url, KEY_A, "GET", "/v1/indexes/shared/documents/b1"))[
        "content_hash"] != before["content_hash"]
    made(call(url, KEY_A, "DELETE", "/v1/indexes/shared/documents/b1"))
    assert made(call(url, KEY_B, "GET", "/v1/indexes/shared/documents/b1"))["doc_id"] == "b1"
    # A key may not reach a stored id of another namespace through the path either.
    for path in ("tenant=b/b1", "tenant=b%2Fb1", "..%2F..%2Ftenant=b%2Fb1"):
        hidden = call(url, KEY_A, "GET", f"/v1/indexes/shared/documents/{path}")
        assert hidden.status_code == 404, (path, hidden.text)
        assert hidden.json()["error"]["code"] in ("document_not_found", None), hidden.text
    assert "7731" not in hidden.text
    # A read-only key of tenant A changes nothing, not even its own documents.
    for method, path, kw in [("POST", "/v1/indexes/shared/documents", {"json": docs(
            ("a9", "x"))}), ("DELETE", "/v1/indexes/shared/documents/a1", {}),
            ("POST", "/v1/indexes", {"json": {"name": "a-new"}})]:
        denied = call(url, READER_A, method, path, **kw)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == \
            "insufficient_scope", (path, denied.text)
    # A filtered key may not delete the whole shared index, nor create B's names.
    assert call(url, KEY_A, "DELETE", "/v1/indexes/shared").status_code == 403
    assert call(url, KEY_A, "POST", "/v1/indexes", json={"name": "b-new"}).status_code == 403
    # A's own documents: stamped, replaced, deleted.
    made(call(url, KEY_A, "POST", "/v1/indexes/shared/documents", json=docs(("a3", "x y z"))))
    assert made(call(url, OPS, "GET", "/v1/indexes/shared/documents/tenant=a/a3"))[
        "metadata"] == {"tenant": "a"}
    made(call(url, KEY_A, "DELETE", "/v1/indexes/shared/documents/a3"))


@pytest.mark.parametrize("route", ["rag", "rag-hops"])
def test_citations_never_hold_the_other_tenants_chunks(server, route):
    url = server["url"]
    question = {"role": "user", "content": f"{SECRET_B} What is the Bravo ferry code?"}
    for key, own in ((KEY_A, {"a1", "a2"}), (READER_A, {"a1", "a2"}), (KEY_B, {"b1", "b2"})):
        if key == READER_A and route != "rag":
            continue
        answer = made(call(url, key, "POST", "/v1/chat/completions",
                           json={"model": route, "messages": [question]}))
        cited = {c["doc_id"] for c in answer["citations"]}
        assert cited and cited <= own, (route, cited)
        assert "7731" not in json.dumps(answer) or key == KEY_B
        with httpx.stream("POST", f"{url}/v1/chat/completions", timeout=60,
                          headers={"Authorization": f"Bearer {key}"},
                          json={"model": route, "stream": True, "messages": [question]}) as r:
            text = "".join(r.iter_text())
        assert r.status_code == 200
        events = [json.loads(line[6:]) for line in text.splitlines()
                  if line.startswith("data: {")]
        assert {c["doc_id"] for c in events[0]["citations"]} <= own


def test_routes_and_adapters_a_key_may_not_use_do_not_exist_for_it(server):
    url = server["url"]
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    for hidden in ("b-chat", "b-tone"):
        for path in ("/v1/chat/completions", "/v1/completions"):
            body = {**chat} if "chat" in path else {"prompt": "hi"}
            h = call(url, KEY_A, "POST", path, json={**body, "model": hidden})
            m = call(url, KEY_A, "POST", path, json={**body, "model": "nothing-here"})
            the_same_404(h, m, hidden, "nothing-here")
            assert "b-chat" not in m.text and "b-tone" not in m.text  # not listed
    assert made(call(url, KEY_A, "POST", "/v1/chat/completions",
                     json={**chat, "model": "a-tone"}))["choices"]
    models = {m["id"] for m in made(call(url, KEY_A, "GET", "/v1/models"))["data"]}
    assert {"base", "rag", "a-chat", "a-tone"} <= models
    assert not models & {"b-chat", "b-tone"}
    assert [a["id"] for a in made(call(url, KEY_A, "GET", "/v1/adapters"))["data"]] == ["a-tone"]
    for method in ("GET", "DELETE"):
        the_same_404(call(url, KEY_A, method, "/v1/adapters/b-tone"),
                     call(url, KEY_A, method, "/v1/adapters/nothing-here"), "b-tone",
                     "nothing-here")
    # Loading a name outside the key's grants is refused whether or not it exists.
    for name in ("b-tone", "b-new", "base"):
        denied = call(url, KEY_A, "POST", "/v1/adapters",
                      json={"name": name, "source": str(server["adapters"] / "tone")})
        assert denied.status_code == 403, denied.text
    assert call(url, READER_A, "DELETE", "/v1/adapters/a-tone").status_code == 404
    assert call(url, KEY_B, "GET", "/v1/adapters/b-tone").status_code == 200
    assert call(url, KEY_A, "GET", "/v1/deployments").status_code == 403


def test_a_revoked_key_is_refused_within_the_reload_interval(server):
    url, keys_file = server["url"], server["keys_file"]
    assert call(url, KEY_B, "GET", "/v1/models").status_code == 200
    tmp = keys_file.with_suffix(".new")
    tmp.write_text(json.dumps([k for k in KEYS if k["name"] != "team-b"]))
    os.replace(tmp, keys_file)  # as a Secret volume swaps its file
    revoked_at = time.monotonic()
    # refused by every replica: 20 refusals in a row (requests spread over both replicas)
    streak, refused_after = 0, None
    while streak < 20:
        if call(url, KEY_B, "GET", "/v1/models").status_code == 401:
            streak += 1
            refused_after = refused_after or time.monotonic() - revoked_at
        else:
            streak, refused_after = 0, None
            assert time.monotonic() - revoked_at < RELOAD_S + 2, "revoked key still accepted"
        time.sleep(0.02)
    assert call(url, KEY_A, "GET", "/v1/models").status_code == 200
    tmp.write_text(json.dumps(KEYS))
    os.replace(tmp, keys_file)
    while call(url, KEY_B, "GET", "/v1/models").status_code != 200:
        assert time.monotonic() - revoked_at < 2 * RELOAD_S + 4, "re-added key refused"
        time.sleep(0.05)
    print(f"revoked key refused after {refused_after:.2f}s (bound {RELOAD_S:g}s + a request)")


def test_admin_writes_are_audited(server):
    url = server["url"]
    made(call(url, KEY_A, "POST", "/v1/indexes/shared/documents", json=docs(("a5", "v1"))))
    made(call(url, KEY_A, "POST", "/v1/indexes/shared/documents", json=docs(("a5", "v2"))))
    made(call(url, KEY_A, "DELETE", "/v1/indexes/shared/documents/a5"))
    call(url, KEY_A, "POST", "/v1/indexes/shared/documents", json={"documents": [
        {"doc_id": "a6", "text": "hijack", "metadata": {"tenant": "b"}}]})
    made(call(url, KEY_A, "POST", "/v1/indexes", json={"name": "a-temp", "type": "flat"}), 201)
    made(call(url, OPS, "DELETE", "/v1/indexes/a-temp"))  # a filtered key may not
    made(call(url, KEY_A, "DELETE", "/v1/adapters/a-tone"))
    deadline = time.monotonic() + 10
    while True:
        text = server["audit_file"].read_text()
        lines = [json.loads(x) for x in text.splitlines()]
        seen = {(x["key"], x["action"], x["object"], x["outcome"]) for x in lines}
        want = {("team-a", "document.add", "shared/a5", "ok"),
                ("team-a", "document.replace", "shared/a5", "ok"),
                ("team-a", "document.delete", "shared/a5", "ok"),
                ("team-a", "document.add", "shared", "filter_mismatch"),
                ("team-a", "index.create", "a-temp", "ok"),
                ("ops", "index.delete", "a-temp", "ok"),
                ("team-a", "adapter.unload", "a-tone", "ok"),
                ("team-b", "adapter.load", "b-tone", "ok"),
                ("team-b", "index.create", "b-private", "ok")}
        if want <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert want <= seen, want - seen
    assert all(x["time"].endswith("Z") for x in lines)
    # every line a client's request caused names it (a key reload is the server's own)
    assert all(x["request_id"] for x in lines if x["action"] != "keys.reload")
    for secret in (SECRET_B, "Overwritten", "hijack", "Alpha ferry", OPS, KEY_A, KEY_B):
        assert secret not in text, secret  # never a document's text nor a key
    # each ingress replica counts in its own registry (serving/metrics.py), and the delete
    # was counted by one of the two: ask until a reply comes from that one
    series = 'lorag_audit_events_total{action="document.delete",outcome="ok"}'
    tries = 0
    while tries < 40 and series not in call(url, None, "GET", "/metrics").text:
        tries += 1
    assert tries < 40, "no ingress replica's /metrics counted the delete in 40 replies"
    if any(x["action"] == "keys.reload" for x in lines):  # after the revocation test
        reload = next(x for x in lines if x["action"] == "keys.reload")
        assert reload["detail"]["removed"] == ["team-b"]
