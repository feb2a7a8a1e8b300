"""What a retriever replica does: index admin, ingestion, search and embeddings.

`RetrieverService` is a plain object (unit-testable without Ray) that a retriever
replica holds. Blocking work (embedding, FAISS, SQLite) runs in worker threads so the
replica keeps answering health checks.

Two storage modes (`retrieval.storage`):
- shared (the default): replicas share `data_dir` (one persistent volume): every write
  is committed to the index's SQLite store before it is acknowledged, and every replica
  applies the store's change log before it searches, so a document acknowledged by one
  replica is searchable on all of them. We chose a shared store over broadcasting
  updates because Ray Serve handles address one replica per call (no broadcast), and
  because the store is needed for durability anyway. SQLite's locks need one kernel, so
  these replicas share one node.
- replicated: one service is the writer (`data_dir`, every write, the `replication_*`
  methods); the others are copies (`writer` given): each keeps its own copy of every
  index in a slot of the local `data_dir` and follows the writer
  (`retrieval.replica.Follower`) before each read. Copies refuse writes.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from lorag_core.data_dir import default_data_dir
from retrieval.embedder import Embedder
from retrieval.errors import (IndexNotFoundError, InvalidInputError, RerankerUnavailableError,
                              UnknownEmbeddingModelError, WriterUnavailableError)
from retrieval.knowledge_base import Document
from retrieval.registry import IndexRegistry
from retrieval.replica import Follower, Writer, claim_slot
from retrieval.spec import IndexSpec

__all__ = ["MAX_EMBED_INPUTS", "RetrieverService", "SEEDED_META", "seed_index"]

logger = logging.getLogger(__name__)

MAX_EMBED_INPUTS = 2048


class RetrieverService:
    """`writer`: None for the shared mode and for the writer; for a copy, the writer's
    methods (`writer(method, *args)`), and `data_dir` is the node's replica folder."""

    def __init__(self, data_dir: str | Path | None, indexes: dict[str, dict[str, Any]],
                 embedding_models: dict[str, str], *, query_encoder: str = "onnx",
                 rerank_models: dict[str, str] | None = None, writer: Writer | None = None,
                 sync_interval_s: float = 1.0, read_your_writes: bool = True):
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.follower: Follower | None = None
        self.sync_interval_s = sync_interval_s
        self.read_your_writes = read_your_writes
        if writer is not None:
            self.data_dir, self._slot_lock = claim_slot(self.data_dir)
        self.registry = IndexRegistry(
            self.data_dir, embedder_factory=functools.partial(Embedder, query_encoder=query_encoder))
        if writer is not None:
            self.follower = Follower(self.registry, writer, retry_after_s=sync_interval_s)
        self._following: asyncio.Task | None = None
        self.embedding_models = dict(embedding_models)
        self._config_indexes = {name: IndexSpec.model_validate(
            {k: v for k, v in spec.items() if k != "documents"}) for name, spec in indexes.items()}
        self.rerank_models = dict(rerank_models or {})
        self._rerankers: dict[str, Any] = {}
        self._seeds = {name: spec["documents"] for name, spec in indexes.items()
                       if spec.get("documents")}

    async def start(self, wait_for_writer_s: float = 60.0) -> None:
        if self.follower is not None:  # config indexes: the writer makes and seeds them
            await self._start_copy(wait_for_writer_s)
        else:
            for name, spec in self._config_indexes.items():
                kb = await asyncio.to_thread(self.registry.ensure, name, spec)
                if name in self._seeds:
                    await asyncio.to_thread(seed_index, kb, self._seeds[name])
        for source in self.embedding_models.values():
            await asyncio.to_thread(self.registry.embedder, source)
        for name, source in self.rerank_models.items():
            from retrieval.reranker import QueryLikelihoodReranker

            self._rerankers[name] = await asyncio.to_thread(QueryLikelihoodReranker, source)

    async def _start_copy(self, wait_s: float) -> None:
        """Copy the writer's indexes (or catch the local copies up) before answering;
        after `wait_s` without a writer, start from the local copies as they are."""
        t0 = time.monotonic()
        while True:
            t_round = time.monotonic()
            if await self.follower.fresh():
                self.follower.catch_up_s = round(time.monotonic() - t_round, 3)
                break
            if time.monotonic() > t0 + wait_s:
                logger.warning("no retrieval writer after %.0f s: answering from the local "
                               "copies (%s)", wait_s, ", ".join(self.registry.names()) or
                               "none")
                break
            await asyncio.sleep(0.5)
        self.follower.start_s = round(time.monotonic() - t0, 3)
        self._following = asyncio.get_running_loop().create_task(
            self.follower.run(self.sync_interval_s))

    async def _fresh(self, name: str | None = None) -> None:
        """Before a read on a copy: catch up with the writer (read-your-writes), or, with
        read_your_writes off, only when the copy does not hold the index yet."""
        if self.follower is None:
            return
        if self.read_your_writes or not self.follower.holds(name):
            await self.follower.fresh(name)
        if name is not None and not self.follower.holds(name) \
                and name in self.follower.remote_names:  # exists, not copied yet: not a 404
            raise WriterUnavailableError(
                f"this retriever replica is still copying index {name!r} from the writer; "
                "retry.", retry_after=2)

    def _writable(self) -> None:
        if self.follower is not None:
            raise WriterUnavailableError("this retriever replica holds a copy; writes go to "
                                         "the retrieval writer.", retry_after=1)

    # -- copies (retrieval.replica): the writer's side --------------------------------

    async def replication_state(self) -> dict[str, dict[str, Any]]:
        """{index: {uid, seq}}: on the writer, what copies follow; on a copy, what it holds
        now (without asking the writer)."""
        return await asyncio.to_thread(self.registry.states)

    async def replication_changes(self, name: str, uid: str, after: int, limit: int
                                  ) -> dict[str, Any] | None:
        """The next changes of index `name` after `after`; None if it is no longer the
        index `uid` (deleted, or deleted and created again)."""
        def read():
            try:
                kb = self.registry.get(name)
            except IndexNotFoundError:
                return None
            return kb.log_slice(after, limit) if self.registry.uid(name) == uid else None

        return await asyncio.to_thread(read)

    async def replication_copy(self, name: str) -> dict[str, Any]:
        def read():
            kb = self.registry.get(name)
            return {"index_json": self.registry.index_file(name), **kb.copy_files()}

        return await asyncio.to_thread(read)

    def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
        try:
            self.registry.snapshot_all()
        finally:
            self.registry.close()
            if self.follower is not None:
                self._slot_lock.close()  # the slot is free for the next replica

    # -- indexes ------------------------------------------------------------------

    async def create_index(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        self._writable()
        kb = await asyncio.to_thread(self.registry.create, name, IndexSpec.model_validate(spec))
        return await asyncio.to_thread(kb.stats)

    async def list_indexes(self, owner: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every index's figures (under `owner`, an API key's filter: `KnowledgeBase.stats`)."""
        def stats():
            return [self.registry.get(n).stats(owner) for n in self.registry.names()]

        await self._fresh()
        return await asyncio.to_thread(stats)

    async def index_stats(self, name: str, owner: dict[str, Any] | None = None
                          ) -> dict[str, Any]:
        await self._fresh(name)
        return await asyncio.to_thread(lambda: self.registry.get(name).stats(owner))

    async def delete_index(self, name: str) -> None:
        self._writable()
        await asyncio.to_thread(self.registry.delete, name)

    # -- documents ----------------------------------------------------------------

    # `owner`: the calling API key's filter (serving.auth); None for keys without one.

    async def add_documents(self, name: str, docs: list[dict[str, Any]],
                            owner: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self._writable()
        parsed = [Document.model_validate(d) for d in docs]
        return await asyncio.to_thread(
            lambda: self.registry.get(name).add_documents(parsed, owner))

    async def get_document(self, name: str, doc_id: str, owner: dict[str, Any] | None = None
                           ) -> dict[str, Any] | None:
        await self._fresh(name)
        return await asyncio.to_thread(lambda: self.registry.get(name).document(doc_id, owner))

    async def list_documents(self, name: str, filter: dict[str, Any] | None, limit: int,
                             after: str | None, owner: dict[str, Any] | None = None
                             ) -> list[dict[str, Any]]:
        await self._fresh(name)
        return await asyncio.to_thread(
            lambda: self.registry.get(name).documents(filter, limit, after, owner))

    async def delete_document(self, name: str, doc_id: str, owner: dict[str, Any] | None = None
                              ) -> bool:
        self._writable()
        return await asyncio.to_thread(
            lambda: self.registry.get(name).delete_document(doc_id, owner))

    async def search(self, name: str, query: str, top_k: int, filter: dict[str, Any] | None,
                     exclude_status: list[str] | None = None,
                     owner: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        await self._fresh(name)
        return await asyncio.to_thread(lambda: self.registry.get(name).search(
            query, top_k, filter, exclude_status, owner))

    async def rerank(self, model: str, query: str, hits: list[dict[str, Any]], top_k: int
                     ) -> list[dict[str, Any]]:
        """The `top_k` of `hits` (search results) after which rerank model `model` finds
        `query` most likely, in their given order, each with its `rerank_score`."""
        from retrieval.reranker import keep_reranked

        if model not in self._rerankers:  # a replica started with another config
            raise RerankerUnavailableError(f"this retriever replica has no rerank model "
                                           f"{model!r} loaded; retry", retry_after=5)
        scores = await asyncio.to_thread(self._rerankers[model].score, query,
                                         [h["text"] for h in hits])
        return keep_reranked(hits, scores, top_k)

    # -- embeddings ---------------------------------------------------------------

    async def embed(self, model: str, texts: list[str], encoding_format: str) -> dict[str, Any]:
        if model not in self.embedding_models:
            raise UnknownEmbeddingModelError(model, sorted(self.embedding_models))
        if not texts or len(texts) > MAX_EMBED_INPUTS or not all(
                isinstance(t, str) and t for t in texts):
            raise InvalidInputError(
                f"input must be a non-empty string or a list of 1 to {MAX_EMBED_INPUTS} "
                "non-empty strings.", param="input", code="invalid_value")
        embedder = self.registry.embedder(self.embedding_models[model])

        def run():
            vectors = embedder.encode(texts)
            tokens = sum(embedder.count_tokens(t) for t in texts)
            return vectors, tokens

        vectors, tokens = await asyncio.to_thread(run)
        data = [{"object": "embedding", "index": i, "embedding": _encode(v, encoding_format)}
                for i, v in enumerate(vectors)]
        return {"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


SEEDED_META = "seeded_from"


def seed_index(kb: Any, folder: str) -> None:
    """Ingest a config index's `documents` folder once, when the index is new.

    The store remembers that seeding finished, so later starts never overwrite
    documents changed or deleted through the API since.
    """
    if kb.store.get_meta(SEEDED_META) is not None:
        return
    from retrieval.files import load_documents

    docs = [Document.model_validate(d) for d in load_documents([folder])]
    for i in range(0, len(docs), 64):
        kb.add_documents(docs[i:i + 64])
    kb.store.set_meta(SEEDED_META, str(folder))
    logger.info("index %s: seeded %d documents from %s", kb.name, len(docs), folder)


def _encode(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode()
    return vector.tolist()
