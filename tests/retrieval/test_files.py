"""Documents from files and uploads: suffixes, formats, titles from the first heading."""

from types import SimpleNamespace

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from lorag_core.errors import DomainError
from retrieval.files import FORMATS, DocumentFileError, find_files, named_document
from retrieval.knowledge_base import Document
from retrieval.spec import IndexSpec
from serving.config import load_config
from serving.errors import error_to_wire, register_exception_handlers
from serving.retrieval_api import RetrievalAPI

from .test_chunker import GIT_ADD, GIT_ADD_SECTIONS, RST

ADOC = ("= Ferry Handbook\n\nHow the ferry runs.\n\n== Tickets\n\n"
        "Tickets cost 5 shells at the quay.\n")
SHAPE = {"message", "type", "param", "code"}


def test_suffixes_map_to_formats():
    assert {s: FORMATS[s] for s in (".rst", ".adoc", ".asciidoc", ".txt", ".md", ".html")} == {
        ".rst": "rst", ".adoc": "asciidoc", ".asciidoc": "asciidoc", ".txt": "text",
        ".md": "markdown", ".html": "html"}
    assert named_document("Guide.RST", RST)["format"] == "rst"


@pytest.mark.parametrize("name,text,title", [
    ("guide.md", "Intro.\n\n# Guide\n\nText.", "Guide"),
    ("guide.rst", RST, "User Guide"),
    ("handbook.adoc", ADOC, "Ferry Handbook"),
    ("handbook.asciidoc", "Ferry Handbook\n==============\n\nText.\n", "Ferry Handbook"),
    ("git-add.txt", GIT_ADD, "git-add(1)"),  # sniffed AsciiDoc
    ("index.txt", "Welcome\n*******\n\nText.\n", "Welcome"),  # sniffed rst
    ("page.html", "<title>Page</title><h1>Otters</h1><p>Otters swim.</p>", "Page"),
    ("page.htm", "<h1>Otters</h1><p>Otters swim.</p>", "Otters"),
    # no heading: the file stem
    ("notes.txt", "Plain notes.\n# not a heading\n", "notes"),
    ("readme.md", "No heading here.", "readme"),
    ("empty.html", "<p>Otters swim.</p>", "empty"),
])
def test_a_file_is_titled_by_its_first_heading_else_its_stem(name, text, title):
    doc = named_document(name, text)
    assert doc["title"] == title and doc["doc_id"] == name.rsplit(".", 1)[0]
    assert doc["metadata"] == {"source": name} and doc["text"] == text


def test_find_files_takes_the_new_suffixes(tmp_path):
    for name in ("a.rst", "b.adoc", "c.asciidoc", "d.txt", "e.md", "f.pdf"):
        (tmp_path / name).write_text("x")
    assert [f.name for f in find_files([tmp_path])] == ["a.rst", "b.adoc", "c.asciidoc",
                                                        "d.txt", "e.md"]
    with pytest.raises(DocumentFileError, match=r"\.rst, \.adoc, \.asciidoc"):
        find_files([tmp_path / "f.pdf"])


@pytest.mark.parametrize("fmt,text,title", [
    ("markdown", "# Guide\n\n## Install\n\nRun it.", "Guide"),
    ("rst", RST, "User Guide"),
    ("asciidoc", ADOC, "Ferry Handbook"),
    ("text", GIT_ADD, "git-add(1)"),
    ("text", "Plain prose without headings.", ""),
    ("html", "<title>Zoo</title><h1>Zebra</h1><p>Stripes.</p>", "Zoo"),
    ("html", "<h2>Zebra</h2><p>Stripes.</p>", "Zebra"),  # no <title>: the first heading
])
def test_documents_without_a_title_take_their_first_heading(registry, fmt, text, title):
    kb = registry.create("kb", IndexSpec(type="flat"))
    assert kb.validate(Document(doc_id="d", text=text, format=fmt)).title == title
    given = Document(doc_id="d", text=text, format=fmt, title="Given")
    assert kb.validate(given).title == "Given"


class _Retriever:
    """The retriever deployment's `call` (add_documents only), over an in-process registry."""

    def __init__(self, registry):
        self.registry = registry
        self.call = SimpleNamespace(remote=self._call)

    async def _call(self, method, name, docs, owner=None):
        assert method == "add_documents"
        try:
            kb = self.registry.get(name)
            return {"result": kb.add_documents([Document.model_validate(d) for d in docs],
                                               owner)}
        except DomainError as err:
            return {"error": error_to_wire(err)}


@pytest.fixture
def upload(registry):
    """POST /v1/indexes/kb/files as the ingress serves it, into a real index."""
    registry.create("kb", IndexSpec(type="flat"))
    api = RetrievalAPI(load_config(None), _Retriever(registry))
    app = FastAPI()
    register_exception_handlers(app)

    @app.post("/v1/indexes/{name}/files")
    async def upload_files(name: str, request: Request):
        return await api.upload_files(request, name)

    client = TestClient(app, raise_server_exceptions=False)
    return lambda *files: client.post("/v1/indexes/kb/files", files=[
        ("files", (name, body.encode(), "text/plain")) for name, body in files])


def test_upload_rst_adoc_and_asciidoc_text(upload, registry):
    r = upload(("guide.rst", RST), ("handbook.adoc", ADOC), ("git-add.txt", GIT_ADD))
    assert r.status_code == 200, r.text
    assert [(d["doc_id"], d["status"]) for d in r.json()["data"]] == [
        ("guide", "added"), ("handbook", "added"), ("git-add", "added")]
    kb = registry.get("kb")
    assert {d: kb.store.document(d)["title"] for d in ("guide", "handbook", "git-add")} == {
        "guide": "User Guide", "handbook": "Ferry Handbook", "git-add": "git-add(1)"}
    hit = kb.search("How much does a ferry ticket cost?", top_k=1)[0]
    assert (hit["doc_id"], hit["title"], hit["section"]) == (
        "handbook", "Ferry Handbook", "Ferry Handbook > Tickets")
    hits = kb.search("git add interactive mode status", top_k=20, filter={"doc_id": "git-add"})
    assert {h["section"] for h in hits} == set(GIT_ADD_SECTIONS)


def test_upload_of_an_unsupported_suffix_is_an_openai_error(upload, registry):
    for name in ("report.pdf", "notes"):
        r = upload(("guide.rst", RST), (name, "x"))
        assert r.status_code == 400
        err = r.json()["error"]
        assert set(err) == SHAPE and err["param"] == "files"
        assert err["code"] == "unsupported_file_type" and ".rst" in err["message"]
        assert ".adoc" in err["message"]
    assert registry.get("kb").stats()["documents"] == 0
