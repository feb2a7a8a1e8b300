"""Named indexes (knowledge bases) under one data directory.

    <data_dir>/indexes/<name>/index.json     the IndexSpec it was created with
    <data_dir>/indexes/<name>/store.sqlite   documents, chunks, embeddings, change log
    <data_dir>/indexes/<name>/faiss-<seq>.index  newest FAISS snapshot

Replicas share the data directory: an index another replica created is opened
on first use, one it deleted disappears. Embedders are loaded once per name.

Search settings: index.json always holds explicit ones (a new index gets the
default, dense), so a later change of the default never changes how an
existing index answers. An index.json from before they existed means dense, as
it was created. Likewise `embed_headings`: on for a new index, off for an index.json
from before it existed (its vectors were made from the text alone). A config index whose config sets `search` gets those settings
written into its index.json at start-up (they change no stored data); one whose
config leaves it unset keeps what it has.
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
from typing import Any

from retrieval.embedder import Embedder
from retrieval.errors import (IndexExistsError, IndexNotFoundError, InvalidInputError,
                              index_not_found)
from retrieval.knowledge_base import KnowledgeBase
from retrieval.spec import IndexSpec, SearchSettings

__all__ = ["IndexRegistry"]

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
        self._all_open = False  # states() opened every index in the folder
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
                return self._configure_search(self.get(name), spec.search)
            try:
                return self.create(name, spec)
            except IndexExistsError:  # another replica created it first
                return self._configure_search(self.get(name), spec.search)

    def _configure_search(self, kb: KnowledgeBase, search: SearchSettings | None
                          ) -> KnowledgeBase:
        if search is None or search == kb.spec.search:
            return kb
        spec_file = self.root / kb.name / "index.json"
        saved = json.loads(spec_file.read_text())
        saved["spec"]["search"] = search.model_dump(mode="json")
        _write_json(spec_file, saved)
        kb.spec = kb.spec.model_copy(update={"search": search})
        logger.info("index %s: search settings from the config: %s", kb.name, search)
        return kb

    def create(self, name: str, spec: IndexSpec) -> KnowledgeBase:
        if not _NAME_RE.match(name):
            raise InvalidInputError(
                "index name must be 1-64 letters, digits, '_' or '-', starting with a letter "
                "or digit.", param="name", code="invalid_value")
        with self._lock:
            path = self.root / name
            if (path / "index.json").exists():
                raise IndexExistsError(f"index {name!r} already exists.", param="name",
                                       code="index_exists")
            embedder = self.embedder(spec.embedder)  # fails before anything is written
            spec = spec.model_copy(update={"search": spec.search_settings(),
                                           "embed_headings": spec.embed_headings is not False})
            path.mkdir(parents=True, exist_ok=True)
            uid = uuid.uuid4().hex
            _write_json(path / "index.json", {"uid": uid, "spec": spec.model_dump(mode="json")})
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
                raise index_not_found(name)
            saved = json.loads(spec_file.read_text())
            if name in self._indexes and self._uids.get(name) != saved["uid"]:
                self._indexes.pop(name).close()  # deleted and re-created by another replica
            if name not in self._indexes:
                spec = IndexSpec.model_validate(saved["spec"])
                if spec.search is None:  # created before search settings existed: dense
                    spec = spec.model_copy(update={"search": SearchSettings(mode="dense")})
                if spec.embed_headings is None:  # its vectors embed the text alone
                    spec = spec.model_copy(update={"embed_headings": False})
                self._indexes[name] = KnowledgeBase(name, path, spec, self.embedder(spec.embedder))
                self._uids[name] = saved["uid"]
            return self._indexes[name]

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir()
                      if _NAME_RE.match(p.name) and (p / "index.json").exists())

    def delete(self, name: str) -> None:
        with self._lock:
            kb = self.get(name)
            kb.close()
            self._indexes.pop(name, None)
            # Rename first: the index vanishes at once for every replica, then files go.
            trash = self.root / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
            os.replace(self.root / name, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def states(self) -> dict[str, dict[str, Any]]:
        """Each index's identity and last applied change: {name: {uid, seq}} (what a
        copy compares itself with, retrieval.replica). For a registry that is its folder's
        only user (the writer, a copy), where every index is created, installed and
        deleted through it: the first call opens every index in the folder, later calls
        answer from memory (the writer answers one before each read of every copy)."""
        with self._lock:
            if not self._all_open:
                for name in self.names():
                    try:
                        self.get(name)
                    except IndexNotFoundError:  # deleted while we looked
                        continue
                self._all_open = True
            return {name: {"uid": self._uids[name], "seq": kb.applied_seq}
                    for name, kb in self._indexes.items()}

    def uid(self, name: str) -> str | None:
        """The identity of index `name` as this registry has it open (None: not open)."""
        with self._lock:
            return self._uids.get(name) if name in self._indexes else None

    def index_file(self, name: str) -> str:
        """The text of index `name`'s index.json (a copy gets it as it is)."""
        self.get(name)
        return (self.root / name / "index.json").read_text()

    def install(self, name: str, files: dict[str, Any]) -> KnowledgeBase:
        """Put a copy of index `name` in place of whatever this registry holds under that
        name, then open it: `files` holds its index.json text, its store's bytes and a FAISS
        snapshot ([seq, bytes] or None). The copy appears whole or not at all (rename)."""
        incoming = self.root / f".incoming-{name}-{uuid.uuid4().hex[:8]}"
        incoming.mkdir()
        (incoming / "index.json").write_text(files["index_json"])
        (incoming / "store.sqlite").write_bytes(files["store"])
        if files.get("snapshot"):
            seq, data = files["snapshot"]
            (incoming / f"faiss-{int(seq)}.index").write_bytes(data)
        with self._lock:
            old = self._indexes.pop(name, None)
            if old is not None:
                old.close()
            if (self.root / name).exists():
                trash = self.root / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
                os.replace(self.root / name, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(incoming, self.root / name)
            return self.get(name)

    def snapshot_all(self) -> None:
        with self._lock:
            for kb in self._indexes.values():
                kb.snapshot()

    def close(self) -> None:
        with self._lock:
            for kb in self._indexes.values():
                kb.close()
            self._indexes.clear()
            self._all_open = False


def _write_json(path: Path, data: dict) -> None:
    """Replace `path` atomically (a temporary name of its own: replicas may race)."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
