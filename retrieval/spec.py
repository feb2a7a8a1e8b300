"""Index settings, light enough for the config loader to import."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from retrieval.chunker import ChunkingConfig

DEFAULT_EMBEDDER = "builtin:all-minilm-l6-v2"
MIN_LEXICAL_MATCHES = 10


class SearchSettings(BaseModel):
    """How an index answers a query: dense (FAISS) alone, or fused with lexical (FTS5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["dense", "hybrid"] = Field(
        default="dense",
        description="dense: embedding similarity only (the default: on the real-text "
        "benchmark, python -m loadtest.bench_retrieval_quality, it finds the gold document "
        "in the top 5 as often as or more often than hybrid on every set; docs/"
        "retrieval-quality.md). hybrid: the dense and the lexical (SQLite FTS5, bm25) "
        "candidates fused by reciprocal rank, for indexes searched by rare names and codes "
        "that embeddings blur (e.g. PK-4471); its fusion weights below.")
    candidates: int | None = Field(
        default=None, ge=1, le=1000,
        description="Hybrid: candidates each side contributes to the fusion (at least "
        "top_k); null means max(4 * top_k, 20).")
    rrf_k: int = Field(
        default=60, ge=1, le=10_000,
        description="Hybrid: reciprocal rank fusion constant; a chunk scores "
        "1/(rrf_k + dense rank) + lexical_weight/(rrf_k + lexical rank).")
    lexical_weight: float = Field(
        default=1.0, ge=0, le=100,
        description="Hybrid: weight of the lexical ranking relative to the dense one (1).")
    lexical_share: float = Field(
        default=0.05, gt=0, le=1,
        description="Hybrid: the lexical side searches the query's rarest terms while the "
        "chunks they occur in add up to at most this share of the index (and at least "
        f"{MIN_LEXICAL_MATCHES} chunks): distinctive names and codes, not words that half "
        "the chunks share, whose weak matches would crowd out good dense hits in the fusion.")
    max_lexical_matches: int = Field(
        default=1000, ge=0, le=10_000_000,
        description="Hybrid: and at most this many chunks. FTS5 scores every chunk a searched "
        "term occurs in, so this bounds the lexical side's cost on large indexes.")

    def candidate_count(self, top_k: int) -> int:
        return max(self.candidates or max(4 * top_k, 20), top_k)

    def lexical_budget(self, chunks: int) -> int:
        """How many term occurrences (chunks) the lexical side may search in an index of
        `chunks` chunks."""
        share = max(MIN_LEXICAL_MATCHES, int(self.lexical_share * chunks))
        return min(self.max_lexical_matches, share)


class IndexSpec(BaseModel):
    """How an index is built; stored beside it as index.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embedder: str = Field(default=DEFAULT_EMBEDDER,
                          description="sentence-transformers model name/folder or builtin:...")
    type: str = Field(default="hnsw", pattern="^(flat|hnsw)$",
                      description="flat: exact; hnsw: approximate (graph).")
    chunking: ChunkingConfig = Field(
        default_factory=ChunkingConfig,
        description="How documents are split into chunks at ingestion (unit, size, overlap).")
    hnsw_m: int = Field(default=32, ge=4, le=128, description="HNSW graph degree.")
    ef_search: int = Field(default=128, ge=16, le=4096,
                           description="HNSW search breadth. 128 gives recall@10 0.9998 on "
                           "20k real text chunks (python -m loadtest.bench_hnsw_text); random "
                           "vectors, which have no neighbourhood structure, need 512 for 0.98 "
                           "at 20k.")
    embed_headings: bool | None = Field(
        default=None,
        description="Embed each chunk as its heading path (the document's headings down to "
        "its section, or its title) on one line, then its text, so that a chunk deep in "
        "'Annual Report 2023 > Financial results' still carries what it is about. Only the "
        "vector changes: the stored and returned text is the chunk's. Null: on for a new "
        "index; an index created before this setting existed keeps embedding text alone "
        "(its vectors were made that way).")
    detect_status: bool = Field(
        default=True,
        description="At ingestion, read each document's title and opening lines for a "
        "lifecycle banner (\"SUPERSEDED ...\", \"DRAFT ... not approved\", a title ending in "
        "\"- DRAFT\") and store \"draft\" or \"superseded\" as its metadata.status, unless the "
        "document sets metadata.status itself (see retrieval.lifecycle). Routes leave such "
        "documents out of their sources (routes[].retrieval.exclude_status).")
    max_document_chars: int = Field(default=2_000_000, ge=1,
                                    description="Largest document accepted, in characters.")
    search: SearchSettings | None = Field(
        default=None,
        description="How queries are answered. Null: the default (dense) for a new index; an existing "
        "index keeps the settings stored with it (dense for one created before hybrid "
        "search existed). Set on a config index, it also applies to the existing index at "
        "start-up: unlike the fields above it changes no stored data.")

    def search_settings(self) -> SearchSettings:
        """The effective settings: `search`, or the default (dense) when unset."""
        return self.search or SearchSettings()


__all__ = ["DEFAULT_EMBEDDER", "ChunkingConfig", "IndexSpec", "SearchSettings"]
