"""Named indexes (knowledge bases) under one data directory.

    <data_dir>/indexes/<name>/index.json     the IndexSpec it was created with
    <data_dir>/indexes/<name>/store.sqlite   documents, chunks, embeddings, change log
    <data_dir>/indexes/<name>/faiss-<seq>.index  newest FAISS snapshot

Replicas share the data directory: an index another replica created is opened
on first use, one it deleted disappears. Embedders are loaded once per name.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import uuid
from pathlib import Path

from retrieval.embedder import Embedder
from retrieval.knowledge_base import KnowledgeBase
from retrieval.spec import IndexSpec
from serving.errors import ConflictError, InvalidRequestError, NotFoundError

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class IndexRegistry:
    def __init__(self, data_dir: Path, embedder_factory=Embedder):
        self.root = Path(data_dir) / "indexes"
        self.root.mkdir(parents=True, exist_ok=True)
        self._embedder_factory = embedder_factory
        self._embedders: dict[str, Embedder] = {}
        self._indexes: dict[str, KnowledgeBase] = {}
        self._uids: dict[str, str] = {}  # identity of index.json: spots delete + re-create
        self._lock = threading.RLock()

    def embedder(self, name: str) -> Embedder:
        with self._lock:
            if name not in self._embedders:
                self._embedders[name] = self._embedder_factory(name)
            return self._embedders[name]

    def ensure(self, name: str, spec: IndexSpec) -> KnowledgeBase:
        """Open the index, creating it with `spec` if it does not exist (config indexes)."""
        with self._lock:
            if (self.root / name / "index.json").exists():
                return self.get(name)
            try:
                return self.create(name, spec)
            except ConflictError:  # another replica created it first
                return self.get(name)

    def create(self, name: str, spec: IndexSpec) -> KnowledgeBase:
        if not _NAME_RE.match(name):
            raise InvalidRequestError(
                "index name must be 1-64 letters, digits, '_' or '-', starting with a letter "
                "or digit.", param="name", code="invalid_value")
        with self._lock:
            path = self.root / name
            if (path / "index.json").exists():
                raise ConflictError(f"index {name!r} already exists.", param="name",
                                    code="index_exists")
            embedder = self.embedder(spec.embedder)  # fails before anything is written
            path.mkdir(parents=True, exist_ok=True)
            uid = uuid.uuid4().hex
            tmp = path / "index.json.tmp"
            tmp.write_text(json.dumps({"uid": uid, "spec": spec.model_dump(mode="json")},
                                      indent=2))
            os.replace(tmp, path / "index.json")
            kb = KnowledgeBase(name, path, spec, embedder)
            self._indexes[name] = kb
            self._uids[name] = uid
            return kb

    def get(self, name: str) -> KnowledgeBase:
        with self._lock:
            path = self.root / name
            spec_file = path / "index.json"
            if not _NAME_RE.match(name) or not spec_file.exists():
                stale = self._indexes.pop(name, None)
                if stale is not None:
                    stale.close()
                raise NotFoundError(f"index {name!r} does not exist.", param="index",
                                    code="index_not_found")
            saved = json.loads(spec_file.read_text())
            if name in self._indexes and self._uids.get(name) != saved["uid"]:
                self._indexes.pop(name).close()  # deleted and re-created by another replica
            if name not in self._indexes:
                spec = IndexSpec.model_validate(saved["spec"])
                self._indexes[name] = KnowledgeBase(name, path, spec, self.embedder(spec.embedder))
                self._uids[name] = saved["uid"]
            return self._indexes[name]

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "index.json").exists())

    def delete(self, name: str) -> None:
        with self._lock:
            kb = self.get(name)
            kb.close()
            self._indexes.pop(name, None)
            # Rename first: the index vanishes at once for every replica, then files go.
            trash = self.root / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
            os.replace(self.root / name, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def snapshot_all(self) -> None:
        with self._lock:
            for kb in self._indexes.values():
                kb.snapshot()

    def close(self) -> None:
        with self._lock:
            for kb in self._indexes.values():
                kb.close()
            self._indexes.clear()
