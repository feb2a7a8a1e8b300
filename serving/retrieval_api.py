"""Ingress side of retrieval: index admin, ingestion, search and /v1/embeddings.

Bodies are validated here (400s name the field, e.g. `documents.3.text`), then
forwarded to the retriever deployment, which answers in `serving.envelope`'s reply
shape.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from retrieval.files import FORMATS, SUFFIXES, named_document
from retrieval.knowledge_base import Document
from retrieval.spec import IndexSpec
from serving.config import LoragConfig
from serving.envelope import unwrap
from serving.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    from_pydantic_error,
)
from serving.protocol import decode_json_body, read_body


__all__ = ["CreateIndexRequest", "AddDocumentsRequest", "SearchRequest",
           "EmbeddingsRequest", "RetrievalAPI"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateIndexRequest(IndexSpec):
    model_config = ConfigDict(extra="forbid")
    name: str


class AddDocumentsRequest(_Body):
    documents: list[Document] = Field(min_length=1)


class SearchRequest(_Body):
    query: str
    top_k: int = 5
    filter: Any = None
    exclude_status: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=16,
        description="Leave out documents whose metadata.status is one of these (e.g. "
        "[\"draft\", \"superseded\"], what routes leave out by default).")


class EmbeddingsRequest(_Body):
    model: str
    input: str | list[str]
    encoding_format: str = Field(default="float", pattern="^(float|base64)$")
    user: str | None = None


def _parse(model: type[BaseModel], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise from_pydantic_error(err) from None


class RetrievalAPI:
    def __init__(self, config: LoragConfig, retriever: Any):
        self.config = config
        self.retriever = retriever

    async def _call(self, method: str, *args: Any) -> Any:
        reply = await self.retriever.call.remote(method, *args)
        return unwrap(reply)

    async def _json(self, raw: Request) -> dict[str, Any]:
        return decode_json_body(
            await read_body(raw, self.config.server.ingress.max_request_bytes),
            self.config.server.ingress.max_request_bytes)

    # -- indexes --------------------------------------------------------------------

    async def create_index(self, raw: Request) -> dict[str, Any]:
        req = _parse(CreateIndexRequest, await self._json(raw))
        spec = req.model_dump(exclude={"name"})
        return {"object": "index", **await self._call("create_index", req.name, spec)}

    async def list_indexes(self) -> dict[str, Any]:
        data = await self._call("list_indexes")
        return {"object": "list", "data": [{"object": "index", **d} for d in data]}

    async def get_index(self, name: str) -> dict[str, Any]:
        return {"object": "index", **await self._call("index_stats", name)}

    async def delete_index(self, name: str) -> dict[str, Any]:
        users = [r.name for r in self.config.routes if r.retrieval and r.retrieval.index == name]
        if users:
            raise ConflictError(
                f"index {name!r} is used by route(s) {', '.join(users)} of the server's config; "
                "delete or replace its documents instead.", param="name", code="index_in_use")
        await self._call("delete_index", name)
        return {"id": name, "object": "index", "deleted": True}

    # -- documents ------------------------------------------------------------------

    async def add_documents(self, name: str, raw: Request) -> dict[str, Any]:
        req = _parse(AddDocumentsRequest, await self._json(raw))
        return await self._ingest(name, [d.model_dump() for d in req.documents])

    async def upload_files(self, name: str, raw: Request) -> dict[str, Any]:
        size = int(raw.headers.get("content-length") or 0)
        if size > self.config.retrieval.max_upload_bytes:
            raise PayloadTooLargeError(
                f"upload is {size} bytes; the limit is {self.config.retrieval.max_upload_bytes}.",
                code="request_too_large")
        if not raw.headers.get("content-type", "").startswith("multipart/form-data"):
            raise InvalidRequestError("upload files as multipart/form-data.", param="files",
                                      code="invalid_content_type")
        form = await raw.form()
        docs = []
        for _, item in form.multi_items():
            if not hasattr(item, "filename"):
                continue
            docs.append(await _file_document(item))
        if not docs:
            raise InvalidRequestError("no files in the upload.", param="files")
        return await self._ingest(name, docs)

    async def _ingest(self, name: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
        limit = self.config.retrieval.max_documents_per_request
        if len(docs) > limit:
            raise InvalidRequestError(f"at most {limit} documents per request.",
                                      param="documents", code="too_many_documents")
        results = await self._call("add_documents", name, docs)
        return {"object": "list", "index": name, "data": results}

    async def get_document(self, name: str, doc_id: str) -> dict[str, Any]:
        doc = await self._call("get_document", name, doc_id)
        if doc is None:
            raise NotFoundError(f"document {doc_id!r} is not in index {name!r}.",
                                param="doc_id", code="document_not_found")
        return {"object": "document", **doc}

    async def delete_document(self, name: str, doc_id: str) -> dict[str, Any]:
        if not await self._call("delete_document", name, doc_id):
            raise NotFoundError(f"document {doc_id!r} is not in index {name!r}.",
                                param="doc_id", code="document_not_found")
        return {"id": doc_id, "object": "document", "deleted": True}

    async def search(self, name: str, raw: Request) -> dict[str, Any]:
        req = _parse(SearchRequest, await self._json(raw))
        hits = await self._call("search", name, req.query, req.top_k, req.filter,
                                req.exclude_status)
        return {"object": "list", "index": name, "data": hits}

    # -- embeddings -----------------------------------------------------------------

    async def embeddings(self, raw: Request) -> dict[str, Any]:
        req = _parse(EmbeddingsRequest, await self._json(raw))
        texts = [req.input] if isinstance(req.input, str) else req.input
        return await self._call("embed", req.model, texts, req.encoding_format)


async def _file_document(item: Any) -> dict[str, Any]:
    name = PurePath(item.filename or "").name
    suffix = PurePath(name).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidRequestError(
            f"unsupported file type {suffix or name!r}; upload {SUFFIXES} files.",
            param="files", code="unsupported_file_type")
    try:
        text = (await item.read()).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequestError(f"{name} is not UTF-8 text.", param="files",
                                  code="invalid_encoding") from None
    return named_document(name, text)
