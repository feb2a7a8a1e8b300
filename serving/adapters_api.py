"""Ingress side of LoRA adapters: POST/GET/DELETE /v1/adapters and name resolution.

Loading is three steps so that a bad adapter never becomes visible:

1. the registry fetches, validates and records the version (not yet active);
2. one LLM replica loads it into its engine (`multiplexed_model_id` = the
   version's served id, so that replica is then preferred for it) - weights the
   engine cannot use fail here with a 400;
3. the registry activates it: from now on requests naming the adapter go to
   this version, and requests already running on the previous one finish there.

The registry answers in `serving.envelope`'s reply shape, like the retriever.

Per API key (`serving.auth.Grants`): an adapter the key may not use is answered as one
that does not exist; loading and unloading need `manages.adapters` (or `admin`), and
are recorded in the audit trail (`serving.audit`).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from serving.access import audited, grants_of
from serving.audit import AuditLog
from serving.auth import ALL, Grants
from serving.config import LoragConfig
from serving.envelope import unwrap
from serving.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    from_pydantic_error,
)
from serving.protocol import decode_json_body, read_body


__all__ = ["LoadAdapterRequest", "AdaptersAPI"]


class LoadAdapterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="The `model` id clients will use.")
    source: str = Field(description="Local folder, hf://org/name[@rev] or s3://bucket/prefix.")
    version: str | None = Field(default=None, description="Version label; default 1, 2, ...")
    base_model: str | None = Field(default=None, description="Key in the config's `models`.")


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(f"adapter {name!r} does not exist.", param="name",
                         code="adapter_not_found")


def _not_loaded(name: str) -> NotFoundError:
    """What DELETE says of an adapter that is not loaded (the registry's words)."""
    return NotFoundError(f"adapter {name!r} is not loaded.", code="adapter_not_found")


class AdaptersAPI:
    def __init__(self, config: LoragConfig, registry: Any, llm_handles: dict[str, Any],
                 audit: AuditLog | None = None):
        self.config = config
        self.registry = registry
        self.llm = llm_handles
        self.audit = audit

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        reply = await self.registry.call.remote(method, *args, **kwargs)
        return unwrap(reply)

    async def load(self, raw: Request) -> JSONResponse:
        body = decode_json_body(
            await read_body(raw, self.config.server.ingress.max_request_bytes),
            self.config.server.ingress.max_request_bytes)
        try:
            req = LoadAdapterRequest.model_validate(body)
        except ValidationError as err:
            raise from_pydantic_error(err) from None
        if not grants_of(raw).manages_adapter(req.name):  # the same whether it exists or not
            raise PermissionDeniedError(f"this API key may not load adapter {req.name!r}.",
                                        param="name", code="insufficient_scope")
        async with audited(self.audit, raw, "adapter.load", req.name) as audit:
            record = await self._call("register", req.name, req.source, version=req.version,
                                      base_model=req.base_model, activate=False)
            audit["detail"] = {"version": record["version"]}
            llm = self.llm[record["base_model"]].options(
                multiplexed_model_id=record["served_id"])
            reply = await llm.load_adapter.remote(record)
            if "error" in reply:  # weights the engine cannot use: forget this version
                await self._call("discard", req.name, record["version"])
            unwrap(reply)
            await self._call("activate", req.name, record["version"])
        return JSONResponse(await self.get(req.name), status_code=201)

    async def unload(self, raw: Request, name: str) -> dict[str, Any]:
        grants = grants_of(raw)
        if not grants.uses_adapter(name):
            raise _not_loaded(name)
        if not grants.manages_adapter(name):
            raise PermissionDeniedError(f"this API key may use adapter {name!r} but not "
                                        "unload it.", param="name", code="insufficient_scope")
        async with audited(self.audit, raw, "adapter.unload", name) as audit:
            users = [r.name for r in self.config.routes if r.adapter == name]
            if users:
                raise ConflictError(
                    f"adapter {name!r} is used by route(s) {', '.join(users)} of the server's "
                    "config; load a new version with POST /v1/adapters instead.",
                    param="name", code="adapter_in_use")
            record = await self._call("unregister", name)
            audit["detail"] = {"version": record["version"]}
        return {"id": name, "object": "adapter", "deleted": True, "version": record["version"]}

    async def list(self, grants: Grants = ALL) -> dict[str, Any]:
        return {"object": "list", "data": [a for a in await self._call("describe")
                                           if grants.uses_adapter(a["id"])]}

    async def list_loaded(self, grants: Grants = ALL) -> list[dict[str, Any]]:
        """Active versions, one per adapter name the key may use (for GET /v1/models)."""
        out = []
        for adapter in await self._call("describe"):
            if not grants.uses_adapter(adapter["id"]):
                continue
            for v in adapter["versions"]:
                if v["state"] == "active":
                    out.append({"id": adapter["id"], **v})
        return out

    async def get(self, name: str, grants: Grants = ALL) -> dict[str, Any]:
        if not grants.uses_adapter(name):
            raise _not_found(name)
        found = await self._call("describe", name)
        if not found:
            raise _not_found(name)
        return found[0]

    async def resolve(self, model: str) -> dict[str, Any] | None:
        """The registry record of the active version of adapter `model`, or None."""
        return await self._call("resolve", model)
