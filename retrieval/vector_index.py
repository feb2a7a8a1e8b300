"""FAISS vector index over unit vectors, keyed by int64 chunk ids.

Kinds: `flat` (exact, IndexFlatIP) and `hnsw` (approximate, IndexHNSWFlat);
both inside IndexIDMap2 so that vectors are addressed by chunk id. Inner
product on normalized vectors is cosine similarity.

Removal: Flat removes for real. HNSW graphs cannot drop nodes, so removed ids
become tombstones that every search excludes through an IDSelector, and the
graph is rebuilt from its own stored vectors once tombstones pass a quarter of
it (and before it is saved). Metadata filters use the same IDSelector path.

GPU: with faiss-gpu and a visible GPU, unfiltered Flat searches run on a GPU
copy (index_cpu_to_gpu with StandardGpuResources), refreshed lazily after
writes; the CPU index stays the source of truth. HNSW has no FAISS GPU
implementation and stays on the CPU. Same API either way.

Not thread-safe: the caller serializes writes against reads (see KnowledgeBase).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["KINDS", "REBUILD_TOMBSTONE_SHARE", "gpu_available", "VectorIndex"]

logger = logging.getLogger(__name__)

KINDS = ("flat", "hnsw")
REBUILD_TOMBSTONE_SHARE = 0.25


def _faiss():
    import faiss

    return faiss


def gpu_available() -> bool:
    faiss = _faiss()
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class VectorIndex:
    def __init__(self, dim: int, kind: str = "flat", *, hnsw_m: int = 32,
                 ef_construction: int = 200, ef_search: int = 128, use_gpu: bool | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown index type {kind!r}; known: {', '.join(KINDS)}")
        self.dim, self.kind = dim, kind
        self.hnsw_m, self.ef_construction, self.ef_search = hnsw_m, ef_construction, ef_search
        self.use_gpu = gpu_available() if use_gpu is None else use_gpu
        self.index = self._empty()
        self.tombstones: set[int] = set()
        self.max_id = -1  # highest id ever added: newer ids cannot be present yet
        self._gpu_index = None
        self._gpu_res = None
        self._gpu_dirty = True

    def _empty(self):
        faiss = _faiss()
        if self.kind == "flat":
            inner = faiss.IndexFlatIP(self.dim)
        else:
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
        return faiss.IndexIDMap2(inner)

    # -- writes ---------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self.dim}), "
                             f"got {vectors.shape}")
        if self.tombstones.intersection(ids.tolist()):
            self._compact()  # an id coming back must not collide with its tombstone
        self.index.add_with_ids(vectors, ids)
        self.max_id = max(self.max_id, int(ids.max()))
        self._gpu_dirty = True

    def remove(self, ids: np.ndarray | list[int]) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        if self.kind == "flat":
            self.index.remove_ids(ids)
        else:
            present = set(self.all_ids().tolist())
            self.tombstones.update(i for i in ids.tolist() if i in present)
            if len(self.tombstones) > REBUILD_TOMBSTONE_SHARE * max(1, self.index.ntotal):
                self._compact()
        self._gpu_dirty = True

    def _compact(self) -> None:
        """Rebuild without tombstones (HNSW), from the vectors the index stores."""
        if not self.tombstones:
            return
        ids = self.all_ids()
        vectors = self.index.index.reconstruct_n(0, self.index.ntotal) if len(ids) else None
        keep = np.array([i not in self.tombstones for i in ids.tolist()], dtype=bool)
        self.index = self._empty()
        self.tombstones = set()
        if keep.any():
            self.index.add_with_ids(np.ascontiguousarray(vectors[keep]), ids[keep])

    # -- reads ----------------------------------------------------------------

    def all_ids(self) -> np.ndarray:
        faiss = _faiss()
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    def live_ids(self) -> set[int]:
        return set(self.all_ids().tolist()) - self.tombstones

    def __len__(self) -> int:
        return int(self.index.ntotal) - len(self.tombstones)

    def search(self, queries: np.ndarray, k: int,
               allowed_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (n_queries, k); missing results have id -1."""
        faiss = _faiss()
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if self.index.ntotal == 0 or k <= 0 or (allowed_ids is not None and not len(allowed_ids)):
            return (np.full((len(queries), max(k, 0)), -np.inf, dtype=np.float32),
                    np.full((len(queries), max(k, 0)), -1, dtype=np.int64))
        selector = self._selector(allowed_ids)
        if selector is None:
            if self.kind == "flat" and self.use_gpu:
                return self._gpu().search(queries, k)
            if self.kind == "hnsw" and k > self.ef_search:
                return self.index.search(queries, k, params=faiss.SearchParametersHNSW(efSearch=k))
            return self.index.search(queries, k)  # efSearch was set on the index itself
        params = (faiss.SearchParametersHNSW(sel=selector, efSearch=max(self.ef_search, k))
                  if self.kind == "hnsw" else faiss.SearchParameters(sel=selector))
        return self.index.search(queries, k, params=params)

    def _selector(self, allowed_ids: np.ndarray | None):
        faiss = _faiss()
        parts = []
        if allowed_ids is not None:
            allowed = np.ascontiguousarray(allowed_ids, dtype=np.int64)
            parts.append(faiss.IDSelectorBatch(len(allowed), faiss.swig_ptr(allowed)))
            parts[-1].referenced = allowed  # keep the buffer alive with the selector
        if self.tombstones:
            dead = np.fromiter(self.tombstones, dtype=np.int64, count=len(self.tombstones))
            batch = faiss.IDSelectorBatch(len(dead), faiss.swig_ptr(dead))
            batch.referenced = dead
            neg = faiss.IDSelectorNot(batch)
            neg.referenced = batch
            parts.append(neg)
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        both = faiss.IDSelectorAnd(parts[0], parts[1])
        both.referenced = parts
        return both

    def _gpu(self):
        faiss = _faiss()
        if self._gpu_res is None:
            self._gpu_res = faiss.StandardGpuResources()
        if self._gpu_dirty or self._gpu_index is None:
            self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_res, 0, self.index)
            self._gpu_dirty = False
        return self._gpu_index

    # -- persistence ----------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write atomically: a reader sees the old file or the new one, never half."""
        self._compact()
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        _faiss().write_index(self.index, str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    def load(self, path: Path) -> None:
        faiss = _faiss()
        index = faiss.read_index(str(path))
        if index.d != self.dim:
            raise ValueError(f"{path} holds {index.d}-d vectors, expected {self.dim}")
        if self.kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = self.ef_search
        self.index = index
        self.tombstones = set()
        ids = self.all_ids()
        self.max_id = int(ids.max()) if len(ids) else -1
        self._gpu_dirty = True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
