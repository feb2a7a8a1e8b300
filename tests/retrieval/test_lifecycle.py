"""Document lifecycle: drafts and superseded versions are recognised at ingestion and
left out of searches that ask so (what routes do), exactly."""

from pathlib import Path

import pytest

import retrieval.knowledge_base as knowledge_base
from retrieval.files import file_document
from retrieval.knowledge_base import Document
from retrieval.lifecycle import document_status, lead
from retrieval.registry import IndexRegistry
from retrieval.spec import IndexSpec, SearchSettings

SAMPLES = Path(__file__).resolve().parents[2] / "evaluation" / "samples"

CURRENT = """# Travel Policy

**Version 3.2 - effective 1 February 2024. This policy is current. It supersedes the 2023
travel policy (version 2.4), which must no longer be used.**

## Hotels

The hotel cap is 135 euros a night outside the capital."""

OLD = """# Travel Policy (2023)

**SUPERSEDED. Version 2.4. This version was replaced on 1 February 2024 by the current
travel policy. Kept for reference only.**

## Hotels

The hotel cap is 110 euros a night outside the capital."""

DRAFT = """# Price List 2024 - DRAFT

Prices under review, for comment only.

## Prices

The crate costs 8.90 euros."""

FINAL = """# Price List 2024

**Final edition, approved by the board. This list replaces the draft price list of
December.**

## Prices

The crate costs 21.40 euros."""


@pytest.mark.parametrize("text,title,status", [
    (CURRENT, "travel-policy", None),
    (OLD, "travel-policy-2023", "superseded"),
    (DRAFT, "price-list-draft", "draft"),
    (FINAL, "price-list", None),
    # banners of other shapes
    ("# Remote Work (version 1.2)\n\n> Superseded: this version was replaced by version "
     "2.0 on 3 May 2024. It is kept for reference only.\n\n## Rules\n\nTwo days.", "", "superseded"),
    ("# Leave Policy\n\n**This policy is no longer in force.** Version 4 replaced it.\n\n"
     "## Leave\n\n25 days.", "", "superseded"),
    ("# Prices\n\nStatus: DRAFT prepared on 2 May 2023 for review. Not approved; do not "
     "quote these prices.\n\n## Items\n\nA: 3", "", "draft"),
    ("# Prices\n\n> Draft for discussion only. The approved price list replaces this "
     "document.\n\n## Items\n\nA: 3", "", "draft"),
    ("# Fares\n\n**Version 2023.2. SUPERSEDED on 1 April 2025 by version 2025.1.**\n\n## "
     "Single fares\n\nAdult 4.20.", "", "superseded"),
    # not lifecycle banners
    ("# Records Policy\n\n## Archives\n\nThis version was replaced; superseded records are "
     "archived copy for 7 years.", "", None),  # below the first heading: not the lead
    ("# Fares\n\n**Version 2025.1. It supersedes Fares 2023, which no longer applies.**\n\n"
     "## Single\n\nAdult 4.50.", "", None),  # names the version it replaces
    ("# Guide to Drafting Contracts\n\nHow we write contracts.", "drafting-guide", None),
    ("Plain text with no headings. It was a quiet year.\n\nSuperseded records are kept.",
     "notes", None),  # only the first paragraph of a text without headings counts
    ("DRAFT minutes, not yet approved by the board.\n\nItem 1.", "minutes", "draft"),
    ("# Leave Policy (2022)\n\nSuperseded by the current version, approved in 2024.\n\n## "
     "Leave\n\n20 days.", "", "superseded"),
])
def test_document_status(text, title, status):
    assert document_status(text, title, format="markdown") == status


def test_lead_is_title_and_opening_only():
    title, body = lead(OLD)
    assert title == "Travel Policy (2023)"
    assert body.startswith("**SUPERSEDED") and "hotel cap" not in body
    assert lead("first paragraph\n\nsecond", format="text") == ("", "first paragraph")


@pytest.mark.parametrize("fmt,text,status", [
    ("rst", "=====================\nTravel Policy (2023)\n=====================\n\n**SUPERSEDED. "
     "Replaced on 1 February 2024.**\n\nHotels\n------\n\nThe cap is 120 euros.", "superseded"),
    ("asciidoc", "= Price List - DRAFT\n\nPrepared for review.\n\n== Items\n\nA: 3", "draft"),
    ("text", "Price List\n==========\n\nStatus: draft, not approved.\n\nItems\n-----\n\nA: 3",
     "draft"),
    ("asciidoc", "= Records Policy\n\nIn force.\n\n== Archives\n\nThis version was replaced.",
     None),  # below the first section: not the lead
])
def test_rst_and_asciidoc_leads(fmt, text, status):
    title, body = lead(text, fmt)
    assert title and body and "A: 3" not in body and "cap is" not in body
    assert document_status(text, "", format=fmt) == status


def test_sample_corpora_statuses():
    """The shipped sample sets, read as file ingestion reads them (title = first heading):
    exactly their old versions and drafts are marked."""
    got = {d["doc_id"]: document_status(d["text"], d["title"], format=d["format"])
           for d in map(file_document, sorted(SAMPLES.glob("*/docs/*.md")))}
    marked = {k: v for k, v in got.items() if v}
    assert marked == {"travel-policy-2023": "superseded", "product-catalogue-draft": "draft",
                      "fares-2023": "superseded", "maintenance-programme-draft": "draft"}


def _docs():
    return [Document(doc_id="travel-policy", text=CURRENT),
            Document(doc_id="travel-policy-2023", text=OLD),
            Document(doc_id="price-list-draft", text=DRAFT),
            Document(doc_id="price-list", text=FINAL),
            Document(doc_id="own", text=OLD, metadata={"status": "current"})]


def test_ingestion_stores_the_status_unless_given(registry):
    kb = registry.create("kb", IndexSpec(type="flat"))
    kb.add_documents(_docs())
    status = {d: kb.store.document(d)["metadata"].get("status")
              for d in ("travel-policy", "travel-policy-2023", "price-list-draft",
                        "price-list", "own")}
    assert status == {"travel-policy": None, "travel-policy-2023": "superseded",
                      "price-list-draft": "draft", "price-list": None, "own": "current"}
    off = registry.create("off", IndexSpec(type="flat", detect_status=False))
    off.add_documents(_docs()[1:2])
    assert "status" not in off.store.document("travel-policy-2023")["metadata"]


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_search_leaves_out_excluded_statuses_exactly(registry, monkeypatch, mode):
    """Left-out documents never come back, and the others fill top_k in the order a
    search restricted to them ranks them: whether the excluded chunks are dropped after
    the search (few of them) or filtered out before it (many, or with a metadata
    filter). Dense: the same as an index without them."""
    spec = IndexSpec(type="flat", search=SearchSettings(mode=mode),
                     chunking={"size": 120, "overlap": 0})
    kb = registry.create("kb", spec)
    kb.add_documents(_docs())
    gone = {"travel-policy-2023", "price-list-draft"}
    plain = registry.create("plain", spec)
    plain.add_documents([d for d in _docs() if d.doc_id not in gone])
    statuses = ["draft", "superseded"]
    for query in ("What is the hotel cap outside the capital?", "How much is the crate?"):
        assert gone <= {h["doc_id"] for h in kb.search(query, 20)}
        for k in (1, 3, 8):
            dropped = [h["chunk_id"] for h in kb.search(query, k, exclude_status=statuses)]
            with monkeypatch.context() as m:
                m.setattr(knowledge_base, "MAX_POSTFILTERED", 0)
                prefiltered = [h["chunk_id"] for h in kb.search(query, k,
                                                                 exclude_status=statuses)]
            assert dropped == prefiltered and len(dropped) == min(k, plain.stats()["chunks"])
            assert not gone & {c.split("#")[0] for c in dropped}
            if mode == "dense":
                assert dropped == [h["chunk_id"] for h in plain.search(query, k)]
        only_drafts = kb.search(query, 8, exclude_status=["draft"])
        assert "price-list-draft" not in {h["doc_id"] for h in only_drafts}
        assert "travel-policy-2023" in {h["doc_id"] for h in only_drafts}
    filtered = kb.search("hotel cap", 8, {"doc_id": {"$ne": "own"}},
                         exclude_status=["superseded"])
    assert {h["doc_id"] for h in filtered} == {"travel-policy", "price-list",
                                                "price-list-draft"}


def test_a_store_from_before_detection_is_marked_when_opened(tmp_path, embedder):
    """Documents stored before ingestion detected the status get it (metadata only) the
    first time this version opens the index; re-sending one is still a no-op."""
    import json

    from retrieval.store import STATUS_BACKFILLED, content_hash

    reg = IndexRegistry(tmp_path, embedder_factory=lambda name: embedder)
    kb = reg.create("kb", IndexSpec(type="flat"))
    kb.add_documents(_docs()[:3])
    vectors_before = kb.store.embeddings()[1].copy()
    db = kb.store.db
    for doc_id, title, meta, text in db.execute(
            "SELECT doc_id, title, metadata, text FROM documents").fetchall():
        old = {k: v for k, v in json.loads(meta).items() if k != "status"}
        db.execute("UPDATE documents SET metadata=?, content_hash=? WHERE doc_id=?",
                   (json.dumps(old), content_hash(text, title, old), doc_id))
    db.execute("DELETE FROM meta WHERE key=?", (STATUS_BACKFILLED,))
    assert "status" not in kb.store.document("travel-policy-2023")["metadata"]
    reg.close()

    reopened = IndexRegistry(tmp_path, embedder_factory=lambda name: embedder)
    try:
        kb = reopened.get("kb")
        assert kb.store.document("travel-policy-2023")["metadata"]["status"] == "superseded"
        assert kb.store.document("price-list-draft")["metadata"]["status"] == "draft"
        assert "status" not in kb.store.document("travel-policy")["metadata"]
        assert (kb.store.embeddings()[1] == vectors_before).all()
        assert [r["status"] for r in kb.add_documents(_docs()[:3])] == ["unchanged"] * 3
        hits = kb.search("hotel cap", 8, exclude_status=["superseded"])
        assert "travel-policy-2023" not in {h["doc_id"] for h in hits}
    finally:
        reopened.close()
