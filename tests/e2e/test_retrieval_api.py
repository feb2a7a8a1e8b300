"""Retrieval over HTTP: indexes, live updates, search, uploads, embeddings, bad input."""

import subprocess
import sys
import uuid

import numpy as np
import openai
import pytest

pytestmark = pytest.mark.e2e

ZEBRA = "The zebra named Quill lives in the Lantern Valley and eats blue grass."
OTTER = "The otter named Fenwick runs the ferry across the Copper River every morning."


@pytest.fixture
def index(http):
    name = f"kb-{uuid.uuid4().hex[:8]}"
    r = http.post("/v1/indexes", json={"name": name, "type": "flat",
                                       "max_document_chars": 5000})
    assert r.status_code == 201, r.text
    yield name
    http.delete(f"/v1/indexes/{name}")


def add(http, index, *docs):
    r = http.post(f"/v1/indexes/{index}/documents", json={"documents": list(docs)})
    assert r.status_code == 200, r.text
    return [d["status"] for d in r.json()["data"]]


def search(http, index, query, **kw):
    r = http.post(f"/v1/indexes/{index}/search", json={"query": query, **kw})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def error_of(r, status):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


def test_live_add_replace_delete(http, index):
    assert add(http, index, {"doc_id": "z", "text": ZEBRA, "title": "Zebra",
                             "metadata": {"team": "a"}},
               {"doc_id": "o", "text": OTTER, "metadata": {"team": "b"}}) == ["added", "added"]
    hits = search(http, index, "Who runs the ferry?", top_k=2)
    assert hits[0]["doc_id"] == "o"
    assert hits[0]["score"] >= hits[1]["score"]
    assert {"chunk_id", "title", "section", "text", "metadata", "score"} <= set(hits[0])
    assert [h["doc_id"] for h in search(http, index, "animal", filter={"team": "a"})] == ["z"]
    assert add(http, index, {"doc_id": "z", "text": ZEBRA, "title": "Zebra",
                             "metadata": {"team": "a"}}) == ["unchanged"]
    assert add(http, index, {"doc_id": "o", "text": "Fenwick the otter retired."}) == [
        "replaced"]
    assert all("ferry" not in h["text"] for h in search(http, index, "ferry", top_k=5))
    assert http.delete(f"/v1/indexes/{index}/documents/o").status_code == 200
    assert all(h["doc_id"] != "o" for h in search(http, index, "otter", top_k=5))
    error_of(http.delete(f"/v1/indexes/{index}/documents/o"), 404)
    doc = http.get(f"/v1/indexes/{index}/documents/z").json()
    assert doc["doc_id"] == "z" and doc["chunks"] == 1
    assert http.get(f"/v1/indexes/{index}").json()["documents"] == 1
    assert index in [d["name"] for d in http.get("/v1/indexes").json()["data"]]


def test_superseded_documents_are_marked_and_can_be_left_out(http, index):
    old = ("# Otter Ferry Rules (2023)\n\n**SUPERSEDED. Replaced on 1 May 2024 by the "
           "current rules.**\n\n## Fares\n\nThe otter ferry costs 3 shells.")
    new = ("# Otter Ferry Rules\n\n**This version is current.**\n\n## Fares\n\nThe otter "
           "ferry costs 5 shells.")
    add(http, index, {"doc_id": "rules-2023", "text": old}, {"doc_id": "rules", "text": new})
    meta = {d: http.get(f"/v1/indexes/{index}/documents/{d}").json()["metadata"]
            for d in ("rules-2023", "rules")}
    assert meta["rules-2023"]["status"] == "superseded" and "status" not in meta["rules"]
    query = "How much does the otter ferry cost?"
    assert {h["doc_id"] for h in search(http, index, query, top_k=4)} == {"rules", "rules-2023"}
    kept = search(http, index, query, top_k=4, exclude_status=["draft", "superseded"])
    assert {h["doc_id"] for h in kept} == {"rules"}


def test_multipart_upload(http, index):
    files = [("files", ("zebra.md", b"# Zebras\n\n" + ZEBRA.encode(), "text/markdown")),
             ("files", ("otter.txt", OTTER.encode(), "text/plain")),
             ("files", ("page.html", b"<title>Page</title><h1>Otters</h1><p>Otters swim.</p>",
                        "text/html")),
             ("files", ("badgers.rst", b"Badgers\n=======\n\nBadgers dig setts.\n", "text/x-rst")),
             ("files", ("herons.adoc", b"= Herons\n\nHerons wade in reeds.\n", "text/plain"))]
    r = http.post(f"/v1/indexes/{index}/files", files=files)
    assert r.status_code == 200, r.text
    assert sorted(d["doc_id"] for d in r.json()["data"]) == ["badgers", "herons", "otter", "page",
                                                             "zebra"]
    hit = search(http, index, "Otters swim", top_k=1)[0]
    assert hit["doc_id"] == "page" and hit["title"] == "Page" and hit["section"] == "Otters"
    # a file's title is its first heading, else its stem
    titles = {d: http.get(f"/v1/indexes/{index}/documents/{d}").json()["title"]
              for d in ("zebra", "otter", "badgers", "herons")}
    assert titles == {"zebra": "Zebras", "otter": "otter", "badgers": "Badgers",
                      "herons": "Herons"}
    hit = search(http, index, "Where do herons wade?", top_k=1)[0]
    assert hit["doc_id"] == "herons" and hit["section"] == "Herons"


def test_bad_input_changes_nothing(http, index):
    add(http, index, {"doc_id": "z", "text": ZEBRA})
    before = http.get(f"/v1/indexes/{index}").json()
    base = f"/v1/indexes/{index}"
    cases = [
        (http.post(f"{base}/documents", json={"documents": [{"doc_id": "e", "text": "  "}]}),
         400, "text"),
        (http.post(f"{base}/documents", json={"documents": [{"doc_id": "b", "text": "x" * 5001}]}),
         400, "text"),
        (http.post(f"{base}/documents", json={"documents": [{"doc_id": "n"}]}), 400,
         "documents.0.text"),
        (http.post(f"{base}/documents", json={"documents": []}), 400, "documents"),
        (http.post(f"{base}/files", files=[("files", ("a.pdf", b"%PDF", "application/pdf"))]),
         400, "files"),
        (http.post(f"{base}/search", json={"query": "zebra", "top_k": 0}), 400, "top_k"),
        (http.post(f"{base}/search", json={"query": "zebra", "top_k": 1000}), 400, "top_k"),
        (http.post(f"{base}/search", json={"query": "zebra", "filter": {"x": {"$regex": 1}}}),
         400, "filter.x"),
        (http.post(f"{base}/search", json={"query": "zebra", "filter": [1]}), 400, "filter"),
        (http.post(f"{base}/search", json={"query": ""}), 400, "query"),
        (http.post(f"{base}/search", json={"query": "zebra", "exclude_status": "draft"}), 400,
         "exclude_status"),
        (http.post(f"{base}/search", json={"query": "zebra", "exclude_status": [""]}), 400,
         "exclude_status.0"),
        (http.post(f"{base}/search", content=b"{oops", headers={"content-type": "application/json"}),
         400, None),
    ]
    for r, status, param in cases:
        err = error_of(r, status)
        if param:
            assert err["param"] == param, err
    assert http.get(f"/v1/indexes/{index}").json() == before


def test_unknown_index_is_404(http):
    for r in (http.post("/v1/indexes/nope/search", json={"query": "x"}),
              http.post("/v1/indexes/nope/documents", json={"documents": [
                  {"doc_id": "a", "text": "b"}]}),
              http.get("/v1/indexes/nope"), http.delete("/v1/indexes/nope"),
              http.delete("/v1/indexes/nope/documents/a")):
        assert error_of(r, 404)["code"] == "index_not_found"


def test_index_admin_errors(http, index):
    assert error_of(http.post("/v1/indexes", json={"name": index}), 409)["code"] == "index_exists"
    assert error_of(http.post("/v1/indexes", json={"name": "../x"}), 400)["param"] == "name"
    assert error_of(http.post("/v1/indexes", json={"name": "ok", "type": "lsh"}), 400)[
        "param"] == "type"


def test_embeddings_in_openai_shape(client):
    r = client.embeddings.create(model="all-minilm-l6-v2", input=["a zebra", "an otter"])
    assert len(r.data) == 2 and [d.index for d in r.data] == [0, 1]
    v = np.array(r.data[0].embedding)
    assert v.shape == (384,) and abs(np.linalg.norm(v) - 1) < 1e-3
    assert r.usage.prompt_tokens > 0
    r = client.embeddings.create(model="all-minilm-l6-v2", input="one", encoding_format="float")
    assert len(r.data[0].embedding) == 384
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope", input="x")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="all-minilm-l6-v2", input=[])


def test_models_list_embedding_model(client):
    assert "all-minilm-l6-v2" in {m.id for m in client.models.list()}


def test_cli_ingest(server_url, http, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "zebra.md").write_text("# Zebra\n\n" + ZEBRA)
    (tmp_path / "docs" / "otter.txt").write_text(OTTER)
    name = f"cli-{uuid.uuid4().hex[:6]}"
    r = subprocess.run([sys.executable, "-m", "serving.cli", "ingest", str(tmp_path / "docs"),
                        "--index", name, "--url", server_url, "--create"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "2 added" in r.stdout
    assert search(http, name, "ferry across the river", top_k=1)[0]["doc_id"] == "otter"
    r = subprocess.run([sys.executable, "-m", "serving.cli", "ingest", str(tmp_path / "docs"),
                        "--index", name, "--url", server_url],
                       capture_output=True, text=True, timeout=300)
    assert "2 unchanged" in r.stdout
    http.delete(f"/v1/indexes/{name}")
