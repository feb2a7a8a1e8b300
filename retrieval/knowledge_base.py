"""One named index: chunker + embedder + FAISS index + SQLite store, kept in agreement.

Write path (`add_documents`, `delete_document`): chunk, embed, commit to the
store in one transaction (the acknowledgement point), then apply the logged
changes to the in-memory FAISS index. Read path (`search`): first apply any
changes other replicas committed to the shared store, then search FAISS and
join chunk rows from the store, so a deleted or replaced document is never
returned. On open: load the newest FAISS snapshot and replay the changes after
it, or rebuild from the stored embeddings.

Hybrid search (the spec's `search.mode`): the dense top-N from FAISS and the
lexical top-N from the store's FTS5 index (bm25, same metadata filter) are
fused by reciprocal rank (`retrieval.lexical.rrf`) and the best top_k returned
in fused order. Each hit's `score` stays the cosine similarity to the query,
so a route's `min_score` means what it did in dense mode; `fused_score`,
`dense_rank` and `lexical_rank` (1-based, null when absent) say why it ranked.

Lifecycle (`retrieval.lifecycle`): at ingestion a document whose opening says it is a
draft or superseded gets metadata.status "draft" / "superseded" (the spec's
`detect_status`; documents stored before that get theirs when the index is first opened
by this version); a search may leave out documents by status (`exclude_status`, what
routes do), exactly: each side searches as many more candidates as there are excluded
chunks and drops them, or, when there are many, searches only the others like a filter.

Thread-safe: one lock serializes writes, syncs and searches of this index.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from retrieval.chunker import Chunk, chunk_text, document_title, html_to_markdown
from retrieval.copies import IndexCopies
from retrieval.embedder import Embedder
from retrieval.errors import InvalidInputError
from retrieval.filters import compile_filter, equalities, matches, scoped
from retrieval.namespaces import Namespace
from retrieval.lifecycle import document_status
from retrieval.lexical import Fused, TermCounts, fts_match, query_terms, rrf, select_terms
from retrieval.spec import IndexSpec, SearchSettings
from retrieval.store import Change, DocumentStore, content_hash
from retrieval.vector_index import VectorIndex

__all__ = ["SNAPSHOT_EVERY_CHANGES", "MAX_TOP_K", "MAX_POSTFILTERED", "Document",
           "KnowledgeBase"]

logger = logging.getLogger(__name__)

SNAPSHOT_EVERY_CHANGES = 500
MAX_TOP_K = 100
MAX_POSTFILTERED = 256  # excluded chunks dropped after the search; more are filtered out
_DOC_ID_RE = re.compile(r"^[^\x00-\x1f/\\]{1,256}$")


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")

    doc_id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)
    format: str = Field(default="markdown", pattern="^(markdown|rst|asciidoc|text|html)$",
                        description="How to find its sections: markdown, rst, asciidoc, html, "
                        "or text (rst or AsciiDoc headings when it has them).")


class KnowledgeBase(IndexCopies):
    def __init__(self, name: str, path: Path, spec: IndexSpec, embedder: Embedder):
        self.name, self.path, self.spec, self.embedder = name, Path(path), spec, embedder
        self.path.mkdir(parents=True, exist_ok=True)
        self.store = DocumentStore(self.path / "store.sqlite")
        self.index = self._new_index()
        self.applied_seq = 0
        self._lock = threading.RLock()
        self._since_snapshot = 0
        self._term_counts = TermCounts(self.store.term_counts)
        self._open()

    # -- open / persist -----------------------------------------------------------

    def _new_index(self) -> VectorIndex:
        return VectorIndex(self.embedder.dim, self.spec.type, hnsw_m=self.spec.hnsw_m,
                           ef_search=self.spec.ef_search)

    def _open(self) -> None:
        stored_dim = self.store.get_meta("dim")
        if stored_dim is not None and int(stored_dim) != self.embedder.dim:
            raise ValueError(f"index {self.name} holds {stored_dim}-d vectors but embedder "
                             f"{self.spec.embedder} makes {self.embedder.dim}-d ones")
        self.store.set_meta("dim", str(self.embedder.dim))
        if self.spec.detect_status:
            marked = self.store.backfill_status(document_status)
            if marked:
                logger.info("index %s: %d stored documents marked draft or superseded",
                            self.name, marked)
        snapshot = self._latest_snapshot()
        if snapshot is not None and snapshot[0] <= self.store.last_seq():
            try:
                self.index.load(snapshot[1])
                self.applied_seq = snapshot[0]
            except Exception:  # a damaged snapshot is only a cache: rebuild
                logger.exception("index %s: snapshot unreadable, rebuilding", self.name)
                self.index = self._new_index()
                self.applied_seq = 0
        if self.applied_seq == 0:
            ids, vectors = self.store.embeddings()
            self.index.add(ids, vectors)
            self.applied_seq = self.store.last_seq()
        else:
            self._apply(self.store.changes_after(self.applied_seq))
        logger.info("index %s open: %d vectors at change %d", self.name, len(self.index),
                    self.applied_seq)

    def _latest_snapshot(self) -> tuple[int, Path] | None:
        found = []
        for p in self.path.glob("faiss-*.index"):
            m = re.fullmatch(r"faiss-(\d+)\.index", p.name)
            if m:
                found.append((int(m.group(1)), p))
        return max(found) if found else None

    def snapshot(self) -> None:
        """Save the FAISS index as of `applied_seq` (atomic); older snapshots go."""
        with self._lock:
            target = self.path / f"faiss-{self.applied_seq}.index"
            self.index.save(target)
            for p in self.path.glob("faiss-*.index"):
                if p != target:
                    p.unlink(missing_ok=True)
            self._since_snapshot = 0

    def close(self) -> None:
        with self._lock:
            self.store.close()

    # -- sync -----------------------------------------------------------------------

    def _apply(self, changes: list[Change]) -> None:
        if not changes:
            return
        removed = [i for c in changes for i in c.removed]
        added = [i for c in changes for i in c.added]
        self.index.remove(removed)
        if added and min(added) <= self.index.max_id:  # replay overlap: skip what is there
            present = self.index.live_ids()
            added = [i for i in added if i not in present]
        ids, vectors = self.store.embeddings(added)  # ids deleted since are simply absent
        self.index.add(ids, vectors)
        self.applied_seq = changes[-1].seq
        self._since_snapshot += len(changes)
        self._term_counts.changed(len(removed) + len(ids), len(self.index))

    def sync(self) -> None:
        """Apply what other writers committed to the shared store since we last looked."""
        with self._lock:
            if self.store.last_seq() > self.applied_seq:
                self._apply(self.store.changes_after(self.applied_seq))

    def _maybe_snapshot(self) -> None:
        if self._since_snapshot >= SNAPSHOT_EVERY_CHANGES:
            self.snapshot()

    # -- writes -----------------------------------------------------------------------

    def validate(self, doc: Document) -> Document:
        if not _DOC_ID_RE.match(doc.doc_id) or not doc.doc_id.strip():
            raise InvalidInputError(
                "doc_id must be 1-256 characters without control characters or slashes.",
                param="doc_id", code="invalid_value")
        if len(doc.text) > self.spec.max_document_chars:
            raise InvalidInputError(
                f"document {doc.doc_id!r} has {len(doc.text)} characters; the limit is "
                f"{self.spec.max_document_chars}.", param="text", code="document_too_large")
        if doc.format == "html":
            text, html_title = html_to_markdown(doc.text)
            doc = doc.model_copy(update={"text": text, "title": doc.title or html_title,
                                         "format": "markdown"})
        if not doc.text.strip():
            raise InvalidInputError(f"document {doc.doc_id!r} is empty.", param="text",
                                    code="empty_document")
        if not doc.title:  # a search hit or a source names its document: the first heading
            doc = doc.model_copy(update={"title": document_title(doc.text, doc.format)})
        try:
            json.dumps(doc.metadata)
        except (TypeError, ValueError):
            raise InvalidInputError("metadata must be JSON-serializable.",
                                    param="metadata") from None
        if self.spec.detect_status and "status" not in doc.metadata:
            status = document_status(doc.text, doc.title, format=doc.format)
            if status is not None:
                doc = doc.model_copy(update={"metadata": {**doc.metadata, "status": status}})
        return doc

    def add_documents(self, docs: list[Document], owner: dict[str, Any] | None = None
                      ) -> list[dict[str, Any]]:
        """Add or replace documents; unchanged ones (same content hash) are no-ops.

        All documents are checked before anything is written: one bad document
        rejects the whole batch and changes nothing. `owner` is the writing API key's
        filter (serving.auth): each document is stamped with its equality fields and
        must pass it, its doc_id is in the key's namespace (retrieval.namespaces), and
        no document outside the filter is replaced.
        """
        owned = compile_filter(owner) if owner else None
        ns = Namespace(owner)
        docs = [self.validate(_stamped(d, owner) if owner else d) for d in docs]
        if ns.prefix:
            docs = [d.model_copy(update={"doc_id": ns.stored(d.doc_id)}) for d in docs]
        ids = [d.doc_id for d in docs]
        if len(set(ids)) != len(ids):
            raise InvalidInputError("a batch names the same doc_id twice.", param="doc_id")
        count = self.embedder.count_tokens if self.spec.chunking.unit == "tokens" else None
        digests = {d.doc_id: content_hash(d.text, d.title, d.metadata) for d in docs}
        with self._lock:
            if owned is not None:  # before the embedding; "unchanged" ones too
                self.store.refuse_foreign(ids, owned)
            old = {d.doc_id: self.store.document_hash(d.doc_id) for d in docs}
        # Chunking and embedding (the slow part) run without the lock, so searches
        # keep being answered while a large batch is being embedded.
        results, pending, all_chunks = [], [], []
        for d in docs:
            if old[d.doc_id] == digests[d.doc_id]:
                results.append({"doc_id": d.doc_id, "status": "unchanged", "chunks": None})
                continue
            chunks = chunk_text(d.doc_id, d.text, d.title, self.spec.chunking,
                                format=d.format, count_tokens=count)
            pending.append((d, chunks, "replaced" if old[d.doc_id] else "added"))
            all_chunks.extend(chunks)
        vectors = self.embedder.encode([self._embedded_text(c) for c in all_chunks])
        items, offset = [], 0
        for d, chunks, _ in pending:
            items.append({"doc_id": d.doc_id, "title": d.title, "metadata": d.metadata,
                          "text": d.text, "digest": digests[d.doc_id], "chunks": chunks,
                          "vectors": vectors[offset:offset + len(chunks)]})
            offset += len(chunks)
        with self._lock:
            self.sync()
            # the written ids are checked again inside upsert_many's transaction
            changes = self.store.upsert_many(items, owned) if items else []
            self._apply_own(changes)
            self._maybe_snapshot()
        results += [{"doc_id": d.doc_id, "status": status, "chunks": len(chunks)}
                    for d, chunks, status in pending]
        order = {doc_id: i for i, doc_id in enumerate(ids)}
        return [ns.record(r) for r in sorted(results, key=lambda r: order[r["doc_id"]])]

    def _embedded_text(self, chunk: Chunk) -> str:
        """What a chunk's vector is made from: its heading path (or its document's title)
        on a line before its text unless the spec's embed_headings is off (null is on, as
        for a new index; the registry opens older indexes with it off)."""
        if self.spec.embed_headings is False:
            return chunk.text
        heading = chunk.section or chunk.title
        return f"{heading}\n{chunk.text}" if heading else chunk.text

    def _apply_own(self, changes: list[Change]) -> None:
        # One transaction holds the write lock, so our changes are consecutive; if
        # another writer committed between our sync and our write, replay the log.
        if changes and changes[0].seq != self.applied_seq + 1:
            self.sync()
        else:
            self._apply(changes)

    def delete_document(self, doc_id: str, owner: dict[str, Any] | None = None) -> bool:
        """False: no such document (or none passing `owner`, the API key's filter, in its
        namespace)."""
        doc_id = Namespace(owner).stored(doc_id)
        with self._lock:
            self.sync()
            change = self.store.delete(doc_id, compile_filter(owner) if owner else None)
            if change is None:
                return False
            self._apply_own([change])
            self._maybe_snapshot()
            return True

    # -- reads ------------------------------------------------------------------------

    def search(self, query: str, top_k: int = 5, filter: dict[str, Any] | None = None,
               exclude_status: list[str] | None = None, owner: dict[str, Any] | None = None
               ) -> list[dict[str, Any]]:
        """The `top_k` chunks most relevant to `query` among the documents passing
        `filter` and whose metadata.status is not in `exclude_status`; with `owner` (an
        API key's filter), among those passing it too, doc_ids in its namespace."""
        if owner:
            ns = Namespace(owner)
            return [ns.record(h) for h in self.search(
                query, top_k, scoped(owner, ns.filter(filter)), exclude_status)]
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= MAX_TOP_K:
            raise InvalidInputError(f"top_k must be an integer from 1 to {MAX_TOP_K}.",
                                    param="top_k", code="invalid_value")
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string.", param="query")
        where, params = compile_filter(filter)
        settings = self.spec.search_settings()
        terms = query_terms(query) if settings.mode == "hybrid" else []
        vector = self.embedder.encode_query([query])
        with self._lock:
            self.sync()
            statuses = list(exclude_status or [])
            excluded = self.store.status_chunk_ids(statuses)
            filtered = bool(filter)
            if excluded and (filtered or len(excluded) > MAX_POSTFILTERED):
                # Many to leave out (or a filter to apply anyway): search only the others.
                where = (f"({where}) AND COALESCE(json_extract(d.metadata, '$.status'), '') "
                         f"NOT IN ({','.join('?' * len(statuses))})")
                params = [*params, *statuses]
                filtered, excluded = True, set()
            allowed = self.store.filtered_ids(where, params) if filtered else None
            if settings.mode == "dense":
                hits = self._dense(vector, top_k, allowed, excluded)
                rows = self.store.chunk_rows(list(hits))
                return [{**rows[i], "score": s} for i, s in hits.items() if i in rows]
            n = settings.candidate_count(top_k)
            dense = self._dense(vector, n, allowed, excluded)
            lexical = self._lexical(terms, n, settings, (where, params) if filtered else None,
                                    excluded)
            fused = rrf(list(dense), lexical, k=settings.rrf_k,
                        lexical_weight=settings.lexical_weight)
            return self._fused_hits(fused, dense, vector[0], top_k)

    def _dense(self, vector: np.ndarray, k: int, allowed: np.ndarray | None,
               excluded: set[int]) -> dict[int, float]:
        """The dense top-k chunk ids -> cosine similarity, best first: FAISS searches k
        more per excluded chunk, which are then dropped, so the k are exact."""
        scores, ids = self.index.search(vector, k + len(excluded), allowed)
        hits = {int(i): float(s) for i, s in zip(ids[0], scores[0])
                if i >= 0 and int(i) not in excluded}
        return dict(list(hits.items())[:k])

    def _lexical(self, terms: list[str], n: int, settings: SearchSettings,
                 filter_sql: tuple[str, list[Any]] | None, excluded: set[int]) -> list[int]:
        """The lexical top-n chunk ids, searching the terms the match budget allows, less
        the excluded ones."""
        if not terms:
            return []
        counts = self._term_counts.get(tok for t in terms for tok in t.split())
        match = fts_match(select_terms(terms, counts, settings.lexical_budget(len(self.index))))
        if match is None:
            return []
        where, params = filter_sql or (None, None)
        ids = self.store.lexical_ids(match, n + len(excluded), where, params)
        return [i for i in ids if i not in excluded][:n]

    def _fused_hits(self, fused: list[Fused], dense: dict[int, float], vector: np.ndarray,
                    top_k: int) -> list[dict[str, Any]]:
        """Rows of the best `top_k` fused candidates; `score` stays the cosine similarity
        (FAISS's for dense candidates, from the stored embedding for lexical-only ones)."""
        hits: list[dict[str, Any]] = []
        pos = 0
        while len(hits) < top_k and pos < len(fused):
            batch = fused[pos:pos + top_k - len(hits)]
            pos += len(batch)
            rows = self.store.chunk_rows([f.id for f in batch], embeddings=True)
            for f in batch:
                if f.id not in rows:  # deleted by another writer since it was ranked
                    continue
                row, embedding = rows[f.id]
                score = dense[f.id] if f.id in dense else float(embedding @ vector)
                hits.append({**row, "score": score, "fused_score": f.fused_score,
                             "dense_rank": f.dense_rank, "lexical_rank": f.lexical_rank})
        return hits

    def document(self, doc_id: str, owner: dict[str, Any] | None = None
                 ) -> dict[str, Any] | None:
        ns = Namespace(owner)
        with self._lock:
            self.sync()
            found = self.store.document(ns.stored(doc_id),
                                        compile_filter(owner) if owner else None)
        return ns.record(found) if found else None

    def documents(self, filter: dict[str, Any] | None = None, limit: int = 100,
                  after: str | None = None, owner: dict[str, Any] | None = None
                  ) -> list[dict[str, Any]]:
        """Document records passing `filter` (and `owner`, an API key's filter, with
        doc_ids in its namespace), by doc_id, `limit` after `after`."""
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise InvalidInputError("limit must be an integer from 1 to 1000.",
                                    param="limit", code="invalid_value")
        ns = Namespace(owner)
        where = compile_filter(scoped(owner, ns.filter(filter)))
        with self._lock:
            self.sync()
            rows = self.store.documents(where, limit, None if after is None
                                        else ns.stored(after))
        return [ns.record(r) for r in rows]

    def stats(self, owner: dict[str, Any] | None = None) -> dict[str, Any]:
        """The index's figures; under `owner` (an API key's filter) only the counts of
        the documents passing it, nothing that counts anyone else's."""
        with self._lock:
            self.sync()
            out = {"name": self.name,
                   **self.store.stats(compile_filter(owner) if owner else None),
                   "vectors": len(self.index), "type": self.spec.type,
                   "embedder": self.spec.embedder, "dim": self.embedder.dim,
                   "change_seq": self.applied_seq, "search": self.spec.search_settings().mode,
                   "spec": self.spec.model_dump(mode="json")}
        if owner:
            del out["vectors"], out["change_seq"]
        return out


def _stamped(doc: Document, owner: dict[str, Any]) -> Document:
    """`doc` with the equality fields of `owner` (an API key's filter) in its metadata;
    a document that sets one of them otherwise, or fails the filter, is refused."""
    pinned = equalities(owner)
    for field, value in pinned.items():
        if field in doc.metadata and doc.metadata[field] != value:
            raise InvalidInputError(
                f"document {doc.doc_id!r}: metadata.{field} must be {value!r} (this API "
                "key's filter) or left out.", param="metadata", code="filter_mismatch")
    doc = doc.model_copy(update={"metadata": {**doc.metadata, **pinned}})
    if not matches(owner, {"doc_id": doc.doc_id, "title": doc.title,
                           "metadata": doc.metadata}):
        raise InvalidInputError(
            f"document {doc.doc_id!r} does not pass this API key's filter; set its "
            "metadata to match.", param="metadata", code="filter_mismatch")
    return doc
