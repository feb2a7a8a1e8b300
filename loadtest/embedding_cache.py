"""Vectors and scores kept between runs of loadtest.bench_retrieval_quality, keyed by the
sha256 of what made them, and an Embedder that reads them before it encodes."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np


class VectorCache:
    """One model's vectors (or scores) by sha256 of what made them, kept in one .npz file
    (keys and a matrix), so that a second run of the benchmark embeds only texts it has
    not seen: the same model gives the same vectors."""

    def __init__(self, path: Path | None):
        self.path = path
        self.items: dict[str, np.ndarray] = {}
        self._dirty = False
        if path is not None and path.exists():
            with np.load(path) as data:
                self.items = dict(zip(data["keys"].tolist(), data["values"], strict=True))

    @classmethod
    def for_model(cls, folder: Path | None, model: str) -> VectorCache:
        import re

        if folder is None:
            return cls(None)
        return cls(folder / (re.sub(r"[^A-Za-z0-9.-]+", "_", model) + ".npz"))

    @staticmethod
    def key(*parts: str) -> str:
        import hashlib

        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def get(self, key: str) -> np.ndarray | None:
        return self.items.get(key)

    def put(self, key: str, value: np.ndarray) -> None:
        self.items[key] = value
        self._dirty = True

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # another run may have added to it since we loaded it
            self.items = {**VectorCache(self.path).items, **self.items}
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, keys=np.array(list(self.items)), values=np.stack(list(self.items.values())))
        tmp.replace(self.path)
        self._dirty = False


class CachedEmbedder:
    """An Embedder that remembers each text's vector (in `cache`, shared with earlier
    runs), so settings that chunk alike embed once. Same vectors as the wrapped embedder:
    it computes every text it has not seen."""

    def __init__(self, embedder: Any, cache: VectorCache | None = None):
        self.inner = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self.max_tokens = embedder.max_tokens
        self.cache = cache or VectorCache(None)
        self.encoded = 0  # texts actually encoded (not from the cache)
        self.encode_seconds = 0.0

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def _cached(self, texts: list[str], kind: str, encode) -> np.ndarray:
        keys = [self.cache.key(self.name, kind, t) for t in texts]
        new = {k: t for k, t in zip(keys, texts, strict=True) if self.cache.get(k) is None}
        if new:
            start = time.perf_counter()
            for k, v in zip(new, encode(list(new.values())), strict=True):
                self.cache.put(k, np.asarray(v, dtype=np.float32))
            if kind == "doc":
                self.encoded += len(new)
                self.encode_seconds += time.perf_counter() - start
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.cache.get(k) for k in keys]).astype(np.float32)

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._cached(texts, "doc", self.inner.encode)

    def encode_query(self, texts: list[str]) -> np.ndarray:
        return self._cached(texts, "query", self.inner.encode_query)
