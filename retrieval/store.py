"""SQLite store of one index: documents, chunks (with their embeddings) and a change log.

The store is the source of truth; the FAISS index is derived from it and can
always be rebuilt from the stored embeddings. A document write is one SQLite
transaction (WAL, synchronous=FULL): once `upsert` / `delete` returns, the write
survives `kill -9` and power loss, and a half-done write is never visible.

Every write appends a row to `changes` (seq, removed chunk ids, added chunk
ids). Index replicas that share the store apply the changes they have not seen
yet before each search, which is how replicas of one index stay consistent.

`chunks_fts` (FTS5: chunk text, document title, section) is the lexical index
of hybrid search. Triggers on `chunks` keep it in the transaction that writes
the chunks (chunks are never updated in place: a document write deletes and
re-inserts them), so it is exactly as durable as they are and needs no replay.
A store created before it existed gets it, backfilled, when first opened.

Replicas without a shared filesystem (retrieval.replica) keep copies of a writer's
store: `log_slice` reads what a copy lacks, `apply_slice` writes it into the copy with
the writer's chunk ids and seqs, and `backup_bytes` starts a new copy.

Not thread-safe: one connection per KnowledgeBase, used under its lock.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.chunker import Chunk
from retrieval.copies import StoreCopies, _transaction
from retrieval.errors import DocumentIdTakenError

__all__ = ["SCHEMA", "STATUS_BACKFILLED", "FTS_SCHEMA", "FTS_BACKFILL", "Change",
           "content_hash", "DocumentStore"]

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
CREATE INDEX IF NOT EXISTS documents_status ON documents(json_extract(metadata, '$.status'));
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    removed TEXT NOT NULL,
    added TEXT NOT NULL
);
"""

STATUS_BACKFILLED = "status_backfilled"

# One statement each: they run inside a transaction, which executescript would commit.
FTS_SCHEMA = (
    "CREATE VIRTUAL TABLE chunks_fts USING fts5(text, title, section, tokenize='unicode61')",
    """CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, text, title, section)
        SELECT new.id, new.text, d.title, new.section FROM documents d
        WHERE d.doc_id = new.doc_id;
    END""",
    """CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
        DELETE FROM chunks_fts WHERE rowid = old.id;
    END""",
)
FTS_BACKFILL = ("INSERT INTO chunks_fts(rowid, text, title, section) "
                "SELECT c.id, c.text, d.title, c.section FROM chunks c "
                "JOIN documents d USING(doc_id)")


@dataclass(frozen=True)
class Change:
    seq: int
    removed: list[int]
    added: list[int]


def content_hash(text: str, title: str, metadata: dict[str, Any]) -> str:
    payload = json.dumps([text, title, metadata], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class DocumentStore(StoreCopies):
    def __init__(self, path: Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self._ensure_fts()
        self._vocab: str | None = None

    def _ensure_fts(self) -> None:
        """Create and backfill the lexical index once (stores from before it existed)."""
        if self._has_fts():
            return
        with _transaction(self.db):
            if self._has_fts():  # another process sharing the store was first
                return
            for statement in FTS_SCHEMA:
                self.db.execute(statement)
            self.db.execute(FTS_BACKFILL)

    def term_counts(self, tokens: list[str]) -> dict[str, int]:
        """How many chunks hold each token (tokens as the index folds them); absent: 0."""
        if self._vocab is None:  # per connection, in the temp schema: writes nothing
            self.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab "
                            "USING fts5vocab(main, chunks_fts, 'row')")
            self._vocab = "temp.chunks_vocab"
        out = {}
        for token in tokens:
            row = self.db.execute(f"SELECT doc FROM {self._vocab} WHERE term = ?",
                                  (token,)).fetchone()
            out[token] = row[0] if row else 0
        return out

    def _has_fts(self) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                               "name='chunks_fts'").fetchone() is not None

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

    def foreign_ids(self, doc_ids: list[str], owner: tuple[str, list[Any]]) -> list[str]:
        """Those of `doc_ids` that exist and fail the filter `owner` (compile_filter's)."""
        where, params = owner
        out = []
        for doc_id in doc_ids:
            row = self.db.execute(
                f"SELECT NOT ({where}) FROM documents d WHERE d.doc_id=?",
                [*params, doc_id]).fetchone()
            if row is not None and row[0] != 0:  # NULL (missing field) fails too
                out.append(doc_id)
        return out

    def refuse_foreign(self, doc_ids: list[str], owner: tuple[str, list[Any]]) -> None:
        """DocumentIdTakenError if one of `doc_ids` is held by a document outside `owner`."""
        if taken := self.foreign_ids(doc_ids, owner):
            raise DocumentIdTakenError(f"doc_id {taken[0]!r} is taken; choose another doc_id.",
                                       param="doc_id", code="doc_id_taken")

    def upsert_many(self, docs: list[dict[str, Any]],
                    owner: tuple[str, list[Any]] | None = None) -> list[Change]:
        """Replace several documents and their chunks in one durable transaction.

        Each item: doc_id, title, metadata, text, digest, chunks, vectors. With `owner`
        (a compiled filter), a document already stored outside it is not replaced: the
        whole batch fails with DocumentIdTakenError, inside the same transaction.
        """
        with _transaction(self.db):
            if owner is not None:
                self.refuse_foreign([d["doc_id"] for d in docs], owner)
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

    def delete(self, doc_id: str, owner: tuple[str, list[Any]] | None = None
               ) -> Change | None:
        """Delete a document (None: there is none, or none passing `owner`)."""
        with _transaction(self.db):
            if owner is not None and self.foreign_ids([doc_id], owner):
                return None
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

    def chunk_rows(self, ids: list[int], embeddings: bool = False
                   ) -> dict[int, dict[str, Any]]:
        """Chunk id -> its row; with `embeddings`, (row, vector) pairs instead."""
        if not ids:
            return {}
        rows = self.db.execute(
            "SELECT c.id, c.doc_id, c.chunk_index, c.text, c.section, c.start, c.end, "
            f"d.title, d.metadata{', c.embedding' if embeddings else ''} "
            "FROM chunks c JOIN documents d USING(doc_id) "
            f"WHERE c.id IN ({','.join('?' * len(ids))})", ids).fetchall()
        out = {}
        for r in rows:
            row = {"chunk_id": f"{r[1]}#{r[2]}", "doc_id": r[1], "chunk_index": r[2],
                   "text": r[3], "section": r[4], "start": r[5], "end": r[6],
                   "title": r[7], "metadata": json.loads(r[8])}
            out[r[0]] = (row, np.frombuffer(r[9], dtype=np.float32)) if embeddings else row
        return out

    def lexical_ids(self, match: str, limit: int, where_sql: str | None = None,
                    params: list[Any] | None = None) -> list[int]:
        """Ids of the `limit` chunks best matching the FTS5 expression `match` (bm25),
        best first; `where_sql` is a filter from `compile_filter` (aliases c, d)."""
        if where_sql is None:
            rows = self.db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? "
                                   "ORDER BY rank LIMIT ?", (match, limit))
        else:
            rows = self.db.execute(
                "SELECT chunks_fts.rowid FROM chunks_fts JOIN chunks c ON c.id = "
                "chunks_fts.rowid JOIN documents d USING(doc_id) "
                f"WHERE chunks_fts MATCH ? AND ({where_sql}) ORDER BY chunks_fts.rank LIMIT ?",
                [match, *(params or []), limit])
        return [r[0] for r in rows]

    def backfill_status(self, detect: Callable[[str, str], str | None]) -> int:
        """Once per store: give each document without metadata.status the one
        `detect(text, title)` finds (documents stored before ingestion detected it), with
        the content hash ingestion computes now, so re-sending one is still a no-op.
        Metadata only: vectors and the change log stay as they are. Returns how many."""
        if self.get_meta(STATUS_BACKFILLED) is not None:
            return 0
        with _transaction(self.db):
            if self.get_meta(STATUS_BACKFILLED) is not None:  # another replica was first
                return 0
            rows = self.db.execute(
                "SELECT doc_id, title, metadata, text FROM documents "
                "WHERE json_extract(metadata, '$.status') IS NULL").fetchall()
            marked = 0
            for doc_id, title, metadata, text in rows:
                status = detect(text, title)
                if status is None:
                    continue
                meta = {**json.loads(metadata), "status": status}
                self.db.execute(
                    "UPDATE documents SET metadata=?, content_hash=? WHERE doc_id=?",
                    (json.dumps(meta, ensure_ascii=False), content_hash(text, title, meta),
                     doc_id))
                marked += 1
            self.set_meta(STATUS_BACKFILLED, "1")
        return marked

    def status_chunk_ids(self, statuses: list[str]) -> set[int]:
        """Ids of the chunks of documents whose metadata.status is one of `statuses`
        (indexed: cheap while such documents are few)."""
        if not statuses:
            return set()
        rows = self.db.execute(
            "SELECT c.id FROM documents d JOIN chunks c USING(doc_id) WHERE "
            f"json_extract(d.metadata, '$.status') IN ({','.join('?' * len(statuses))})",
            list(statuses)).fetchall()
        return {r[0] for r in rows}

    def filtered_ids(self, where_sql: str, params: list[Any]) -> np.ndarray:
        rows = self.db.execute(
            f"SELECT c.id FROM chunks c JOIN documents d USING(doc_id) WHERE {where_sql}",
            params).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def stats(self, owner: tuple[str, list[Any]] | None = None) -> dict[str, int]:
        """Documents and chunks (those passing the filter `owner` only, when given)."""
        where, params = owner or ("1=1", [])
        docs = self.db.execute(f"SELECT COUNT(*) FROM documents d WHERE {where}",
                               params).fetchone()[0]
        chunks = self.db.execute(
            f"SELECT COUNT(*) FROM chunks c JOIN documents d USING(doc_id) WHERE {where}",
            params).fetchone()[0]
        return {"documents": docs, "chunks": chunks}

    _DOC_COLUMNS = "d.doc_id, d.title, d.metadata, d.content_hash, d.updated_at"

    def _doc_row(self, row: tuple) -> dict[str, Any]:
        return {"doc_id": row[0], "title": row[1], "metadata": json.loads(row[2]),
                "content_hash": row[3], "updated_at": row[4],
                "chunks": len(self._chunk_ids(row[0]))}

    def document(self, doc_id: str, owner: tuple[str, list[Any]] | None = None
                 ) -> dict[str, Any] | None:
        """A document's record (None: there is none, or none passing `owner`)."""
        where, params = owner or ("1=1", [])
        row = self.db.execute(f"SELECT {self._DOC_COLUMNS} FROM documents d "
                              f"WHERE d.doc_id=? AND ({where})", [doc_id, *params]).fetchone()
        return None if row is None else self._doc_row(row)

    def documents(self, where: tuple[str, list[Any]], limit: int, after: str | None
                  ) -> list[dict[str, Any]]:
        """Up to `limit` document records passing the filter `where`, by doc_id, after
        the doc_id `after` (keyset pagination)."""
        sql, params = where
        if after is not None:
            sql, params = f"({sql}) AND d.doc_id > ?", [*params, after]
        rows = self.db.execute(f"SELECT {self._DOC_COLUMNS} FROM documents d WHERE {sql} "
                               "ORDER BY d.doc_id LIMIT ?", [*params, limit]).fetchall()
        return [self._doc_row(r) for r in rows]
