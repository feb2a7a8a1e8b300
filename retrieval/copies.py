"""What a copy of an index needs (retrieval.replica), as mixins of the store and the index.

`StoreCopies` (of `retrieval.store.DocumentStore`): `log_slice` reads what a copy at some
change lacks, `apply_slice` writes it into the copy with the writer's chunk ids and seqs,
and `backup_bytes` starts a new copy. `IndexCopies` (of
`retrieval.knowledge_base.KnowledgeBase`) does the same under the index's lock and keeps
FAISS in step. Also the store's transaction helpers, which both modules use.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["StoreCopies", "IndexCopies"]


class StoreCopies:
    db: sqlite3.Connection

    def log_slice(self, after: int, limit: int) -> dict[str, Any]:
        """What a copy of this store at change `after` needs to move on: the next `limit`
        changes, plus the current row and chunks (embeddings included) of each document
        they touch, None for one that is gone. Read in one transaction, so all agree."""
        with _reading(self.db):
            changes = self.db.execute(
                "SELECT seq, doc_id, removed, added FROM changes WHERE seq > ? ORDER BY seq "
                "LIMIT ?", (after, limit)).fetchall()
            documents = {}
            for _, doc_id, _, _ in changes:
                if doc_id not in documents:
                    documents[doc_id] = self._document_state(doc_id)
        return {"changes": changes, "documents": documents}

    def _document_state(self, doc_id: str) -> tuple[tuple, list[tuple]] | None:
        doc = self.db.execute("SELECT doc_id, title, metadata, content_hash, text, updated_at "
                              "FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        if doc is None:
            return None
        chunks = self.db.execute(
            "SELECT id, doc_id, chunk_index, text, section, start, end, embedding FROM chunks "
            "WHERE doc_id=? ORDER BY id", (doc_id,)).fetchall()
        return doc, chunks

    def apply_slice(self, part: dict[str, Any]) -> None:
        """Write a `log_slice` of the writer's store into this copy, in one transaction:
        each document it names as the writer holds it now, and its changes with the
        writer's seqs (ids and seqs are the writer's, so the copy stays one)."""
        with _transaction(self.db):
            for doc_id, state in part["documents"].items():
                self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))  # + chunks
                if state is None:
                    continue
                doc, chunks = state
                self.db.execute("INSERT INTO documents(doc_id, title, metadata, content_hash, "
                                "text, updated_at) VALUES(?, ?, ?, ?, ?, ?)", doc)
                self.db.executemany(
                    "INSERT INTO chunks(id, doc_id, chunk_index, text, section, start, end, "
                    "embedding) VALUES(?, ?, ?, ?, ?, ?, ?, ?)", chunks)
            self.db.executemany("INSERT OR IGNORE INTO changes(seq, doc_id, removed, added) "
                                "VALUES(?, ?, ?, ?)", part["changes"])

    def backup_bytes(self) -> bytes:
        """A consistent copy of the whole store (SQLite's online backup), as bytes."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "copy.sqlite"
            target = sqlite3.connect(path)
            try:
                self.db.backup(target)
            finally:
                target.close()
            return path.read_bytes()


class IndexCopies:
    def log_slice(self, after: int, limit: int) -> dict[str, Any]:
        """For a copy at change `after`: the store's `log_slice`."""
        with self._lock:
            return self.store.log_slice(after, limit)

    def copy_files(self) -> dict[str, Any]:
        """A new copy's files: the store (online backup) and the newest FAISS snapshot, if
        any ([seq, bytes]), taken under the lock so that they agree."""
        with self._lock:
            snapshot = self._latest_snapshot()
            return {"store": self.store.backup_bytes(),
                    "snapshot": None if snapshot is None
                    else [snapshot[0], snapshot[1].read_bytes()]}

    def apply_slice(self, part: dict[str, Any]) -> int:
        """Write a writer's `log_slice` into this copy's store, apply it to FAISS; the
        copy's change seq after it."""
        with self._lock:
            self.store.apply_slice(part)
            self.sync()
            self._maybe_snapshot()
            return self.store.last_seq()

    def copied_seq(self) -> int:
        """The last change this copy's store holds (FAISS may be behind it for a moment)."""
        with self._lock:
            return self.store.last_seq()


class _reading:
    """A read transaction: every SELECT inside sees the same committed state."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN DEFERRED")

    def __exit__(self, *_):
        self.db.execute("COMMIT")
        return False


class _transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
