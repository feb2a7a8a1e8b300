"""SQLite store of one index: documents, chunks (with their embeddings) and a change log.

The store is the source of truth; the FAISS index is derived from it and can
always be rebuilt from the stored embeddings. A document write is one SQLite
transaction (WAL, synchronous=FULL): once `upsert` / `delete` returns, the write
survives `kill -9` and power loss, and a half-done write is never visible.

Every write appends a row to `changes` (seq, removed chunk ids, added chunk
ids). Index replicas that share the store apply the changes they have not seen
yet before each search, which is how replicas of one index stay consistent.

Not thread-safe: one connection per IndexManager, used under its lock.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.chunker import Chunk

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
    chunk_index INTEGER NOT NULL,
    text TEXT NOT NULL,
    section TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    removed TEXT NOT NULL,
    added TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Change:
    seq: int
    removed: list[int]
    added: list[int]


def content_hash(text: str, title: str, metadata: dict[str, Any]) -> str:
    payload = json.dumps([text, title, metadata], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class DocumentStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- meta -------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    # -- writes -----------------------------------------------------------------

    def document_hash(self, doc_id: str) -> str | None:
        row = self.db.execute("SELECT content_hash FROM documents WHERE doc_id=?",
                              (doc_id,)).fetchone()
        return row[0] if row else None

    def upsert_many(self, docs: list[dict[str, Any]]) -> list[Change]:
        """Replace several documents and their chunks in one durable transaction.

        Each item: doc_id, title, metadata, text, digest, chunks, vectors.
        """
        with _transaction(self.db):
            return [self._upsert(**d) for d in docs]

    def _upsert(self, doc_id: str, title: str, metadata: dict[str, Any], text: str,
                digest: str, chunks: list[Chunk], vectors: np.ndarray) -> Change:
        removed = self._chunk_ids(doc_id)
        self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        self.db.execute(
            "INSERT INTO documents(doc_id, title, metadata, content_hash, text, updated_at) "
            "VALUES(?, ?, ?, ?, ?, ?)",
            (doc_id, title, json.dumps(metadata, ensure_ascii=False), digest, text, time.time()))
        added = []
        for chunk, vec in zip(chunks, vectors):
            cur = self.db.execute(
                "INSERT INTO chunks(doc_id, chunk_index, text, section, start, end, embedding)"
                " VALUES(?, ?, ?, ?, ?, ?, ?)",
                (doc_id, chunk.index, chunk.text, chunk.section, chunk.start, chunk.end,
                 np.asarray(vec, dtype=np.float32).tobytes()))
            added.append(cur.lastrowid)
        return self._log(doc_id, removed, added)

    def delete(self, doc_id: str) -> Change | None:
        with _transaction(self.db):
            removed = self._chunk_ids(doc_id)
            cur = self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
            if cur.rowcount == 0:
                return None
            return self._log(doc_id, removed, [])

    def _chunk_ids(self, doc_id: str) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]

    def _log(self, doc_id: str, removed: list[int], added: list[int]) -> Change:
        cur = self.db.execute("INSERT INTO changes(doc_id, removed, added) VALUES(?, ?, ?)",
                              (doc_id, json.dumps(removed), json.dumps(added)))
        return Change(cur.lastrowid, removed, added)

    # -- reads ------------------------------------------------------------------

    def last_seq(self) -> int:
        return self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0]

    def changes_after(self, seq: int) -> list[Change]:
        rows = self.db.execute("SELECT seq, removed, added FROM changes WHERE seq > ? "
                               "ORDER BY seq", (seq,))
        return [Change(s, json.loads(r), json.loads(a)) for s, r, a in rows]

    def embeddings(self, ids: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of live chunks; all of them when ids is None."""
        if ids is None:
            rows = self.db.execute("SELECT id, embedding FROM chunks ORDER BY id").fetchall()
        else:
            ids = list(ids)
            rows = []
            for i in range(0, len(ids), 900):  # SQLite's bound-parameter limit
                part = ids[i:i + 900]
                rows += self.db.execute(
                    f"SELECT id, embedding FROM chunks WHERE id IN ({','.join('?' * len(part))})",
                    part).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        out_ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        return out_ids, vectors

    def chunk_rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        rows = self.db.execute(
            "SELECT c.id, c.doc_id, c.chunk_index, c.text, c.section, c.start, c.end, "
            f"d.title, d.metadata FROM chunks c JOIN documents d USING(doc_id) "
            f"WHERE c.id IN ({','.join('?' * len(ids))})", ids).fetchall()
        return {r[0]: {"chunk_id": f"{r[1]}#{r[2]}", "doc_id": r[1], "chunk_index": r[2],
                       "text": r[3], "section": r[4], "start": r[5], "end": r[6],
                       "title": r[7], "metadata": json.loads(r[8])} for r in rows}

    def filtered_ids(self, where_sql: str, params: list[Any]) -> np.ndarray:
        rows = self.db.execute(
            f"SELECT c.id FROM chunks c JOIN documents d USING(doc_id) WHERE {where_sql}",
            params).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def stats(self) -> dict[str, int]:
        docs = self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return {"documents": docs, "chunks": chunks}

    def document(self, doc_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT doc_id, title, metadata, content_hash, updated_at "
                              "FROM documents WHERE doc_id=?", (doc_id,)).fetchone()
        if row is None:
            return None
        return {"doc_id": row[0], "title": row[1], "metadata": json.loads(row[2]),
                "content_hash": row[3], "updated_at": row[4],
                "chunks": len(self._chunk_ids(doc_id))}


class _transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *_):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
