"""Ingress side of retrieval: index admin, ingestion, search and /v1/embeddings.

Bodies are validated here (400s name the field, e.g. `documents.3.text`), then
forwarded to the retriever deployment, which answers in `serving.envelope`'s reply
shape.

Each call is made for one API key (`serving.auth.ApiKey`): an index it may not read is
answered as one that does not exist (the same 404 body); one it may read but not
manage is refused with 403; its `filter` is passed to the retriever, which applies it
to searches, listings, reads and writes (`retrieval.filters.scoped`). Writes are
recorded in the audit trail (`serving.audit`).
"""

from __future__ import annotations

import asyncio
from pathlib import PurePath
from typing import Annotated, Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray.exceptions import RayError

from retrieval.errors import WriterUnavailableError, index_not_found
from retrieval.files import FORMATS, SUFFIXES, named_document
from retrieval.knowledge_base import Document
from retrieval.spec import IndexSpec
from serving.access import audit_record, audited, grants_of
from serving.audit import AuditLog
from serving.auth import Grants
from serving.config import LoragConfig
from serving.envelope import unwrap
from serving.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    from_domain_error,
    from_pydantic_error,
)
from serving.protocol import decode_json_body, read_body


__all__ = ["CreateIndexRequest", "AddDocumentsRequest", "SearchRequest",
           "EmbeddingsRequest", "RetrievalAPI"]


def readable(grants: Grants, name: str) -> None:
    """404, the body of a missing index, unless the key may read index `name`."""
    if not grants.reads_index(name):
        raise from_domain_error(index_not_found(name))


def _managed(grants: Grants, name: str, whole: bool = False) -> None:
    readable(grants, name)
    if not grants.manages_index(name):
        raise PermissionDeniedError(f"this API key may read index {name!r} but not change "
                                    "it.", param="name", code="insufficient_scope")
    if whole and grants.filter:
        raise PermissionDeniedError(
            f"this API key sees part of index {name!r} (its filter); it may not delete the "
            "whole index.", param="name", code="insufficient_scope")


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


WRITES = frozenset({"create_index", "delete_index", "add_documents", "delete_document"})
WRITER_PING_S = 2.0  # how long a write waits to learn that the writer is up


class RetrievalAPI:
    """`writer`: with `retrieval.storage: replicated`, the writer's handle (writes go
    there, reads to `retriever`, the copies); None in the shared mode."""

    def __init__(self, config: LoragConfig, retriever: Any, audit: AuditLog | None = None,
                 writer: Any | None = None):
        self.config = config
        self.retriever = retriever
        self.writer = writer
        self.audit = audit

    async def _call(self, method: str, *args: Any) -> Any:
        return unwrap(await self._reply(method, *args))

    async def _reply(self, method: str, *args: Any) -> dict[str, Any]:
        if self.writer is None or method not in WRITES:
            return await self.retriever.call.remote(method, *args)
        try:  # its node may be down: say so at once rather than wait for it to return
            await asyncio.wait_for(self.writer.ping.remote(), WRITER_PING_S)
        except Exception:  # noqa: BLE001 - timeout, or the replica died under the ping
            raise from_domain_error(WriterUnavailableError(
                "the retrieval writer is not answering (its node may be down); nothing "
                "was written; retry.", retry_after=5)) from None
        try:
            return await self.writer.call.remote(method, *args)
        except RayError:
            raise from_domain_error(WriterUnavailableError(
                "the retrieval writer stopped during this write; it may or may not have "
                "been committed; retry it (writes by doc_id are idempotent).",
                retry_after=5)) from None

    async def _served(self, method: str, raw: Request, *args: Any) -> tuple[Any, dict]:
        """A read's value, and for an admin key (the operator's view; everyone with auth
        off) the replica that answered it in a replicated mode ({} otherwise): node ids
        are the cluster's, not a tenant's business."""
        reply = await self._reply(method, *args)
        value = unwrap(reply)
        if "replica" in reply and grants_of(raw).admin:
            return value, {"served_by": reply["replica"]}
        return value, {}

    async def _json(self, raw: Request) -> dict[str, Any]:
        return decode_json_body(
            await read_body(raw, self.config.server.ingress.max_request_bytes),
            self.config.server.ingress.max_request_bytes)

    # -- indexes --------------------------------------------------------------------

    async def create_index(self, raw: Request) -> dict[str, Any]:
        req = _parse(CreateIndexRequest, await self._json(raw))
        if not grants_of(raw).manages_index(req.name):  # the same whether it exists or not
            raise PermissionDeniedError(f"this API key may not create index {req.name!r}.",
                                        param="name", code="insufficient_scope")
        spec = req.model_dump(exclude={"name"})
        async with audited(self.audit, raw, "index.create", req.name):
            return {"object": "index", **await self._call("create_index", req.name, spec)}

    async def list_indexes(self, raw: Request) -> dict[str, Any]:
        grants = grants_of(raw)
        data = await self._call("list_indexes", grants.filter)
        return {"object": "list", "data": [{"object": "index", **d} for d in data
                                           if grants.reads_index(d["name"])]}

    async def get_index(self, raw: Request, name: str) -> dict[str, Any]:
        grants = grants_of(raw)
        readable(grants, name)
        stats, served = await self._served("index_stats", raw, name, grants.filter)
        return {"object": "index", **stats, **served}

    async def delete_index(self, raw: Request, name: str) -> dict[str, Any]:
        _managed(grants_of(raw), name, whole=True)
        users = [r.name for r in self.config.routes if r.retrieval and r.retrieval.index == name]
        async with audited(self.audit, raw, "index.delete", name):
            if users:
                raise ConflictError(
                    f"index {name!r} is used by route(s) {', '.join(users)} of the server's "
                    "config; delete or replace its documents instead.", param="name",
                    code="index_in_use")
            await self._call("delete_index", name)
        return {"id": name, "object": "index", "deleted": True}

    # -- documents ------------------------------------------------------------------

    async def add_documents(self, raw: Request, name: str) -> dict[str, Any]:
        _managed(grants_of(raw), name)
        req = _parse(AddDocumentsRequest, await self._json(raw))
        return await self._ingest(raw, name, [d.model_dump() for d in req.documents])

    async def upload_files(self, raw: Request, name: str) -> dict[str, Any]:
        _managed(grants_of(raw), name)
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
        return await self._ingest(raw, name, docs)

    async def _ingest(self, raw: Request, name: str, docs: list[dict[str, Any]]
                      ) -> dict[str, Any]:
        limit = self.config.retrieval.max_documents_per_request
        if len(docs) > limit:
            raise InvalidRequestError(f"at most {limit} documents per request.",
                                      param="documents", code="too_many_documents")
        owner = grants_of(raw).filter
        try:
            results = await self._call("add_documents", name, docs, owner)
        except Exception as err:  # one line for the refused batch
            audit_record(self.audit, raw, "document.add", name,
                         str(getattr(err, "code", None) or type(err).__name__),
                         {"doc_ids": [str(d.get("doc_id")) for d in docs][:20]})
            raise
        for r in results:  # "unchanged" ones wrote nothing
            if action := _WRITES.get(r["status"]):
                audit_record(self.audit, raw, action, f"{name}/{r['doc_id']}", "ok")
        return {"object": "list", "index": name, "data": results}

    async def get_document(self, raw: Request, name: str, doc_id: str) -> dict[str, Any]:
        grants = grants_of(raw)
        readable(grants, name)
        doc = await self._call("get_document", name, doc_id, grants.filter)
        if doc is None:
            raise _no_document(name, doc_id)
        return {"object": "document", **doc}

    async def list_documents(self, raw: Request, name: str) -> dict[str, Any]:
        """GET /v1/indexes/{name}/documents?limit=&after=: records (no text) by doc_id."""
        grants = grants_of(raw)
        readable(grants, name)
        params = raw.query_params
        try:
            limit = int(params.get("limit", 100))
        except ValueError:
            raise InvalidRequestError("limit must be an integer from 1 to 1000.",
                                      param="limit", code="invalid_value") from None
        after = params.get("after")
        docs = await self._call("list_documents", name, None, limit, after, grants.filter)
        return {"object": "list", "index": name, "data": docs,
                "has_more": len(docs) == limit,
                "last_id": docs[-1]["doc_id"] if docs else None}

    async def delete_document(self, raw: Request, name: str, doc_id: str) -> dict[str, Any]:
        grants = grants_of(raw)
        _managed(grants, name)
        async with audited(self.audit, raw, "document.delete", f"{name}/{doc_id}"):
            if not await self._call("delete_document", name, doc_id, grants.filter):
                raise _no_document(name, doc_id)
        return {"id": doc_id, "object": "document", "deleted": True}

    async def search(self, raw: Request, name: str) -> dict[str, Any]:
        grants = grants_of(raw)
        readable(grants, name)
        req = _parse(SearchRequest, await self._json(raw))
        hits, served = await self._served("search", raw, name, req.query, req.top_k,
                                          req.filter, req.exclude_status, grants.filter)
        return {"object": "list", "index": name, "data": hits, **served}

    # -- embeddings -----------------------------------------------------------------

    async def embeddings(self, raw: Request) -> dict[str, Any]:
        req = _parse(EmbeddingsRequest, await self._json(raw))
        texts = [req.input] if isinstance(req.input, str) else req.input
        return await self._call("embed", req.model, texts, req.encoding_format)


_WRITES = {"added": "document.add", "replaced": "document.replace"}


def _no_document(name: str, doc_id: str) -> NotFoundError:
    """A document that does not exist, or that the key's filter hides: one body."""
    return NotFoundError(f"document {doc_id!r} is not in index {name!r}.", param="doc_id",
                         code="document_not_found")


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
