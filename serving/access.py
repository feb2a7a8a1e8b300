"""What the ingress checks of every request, after `serving.auth` has the keys: the
caller's key and scope (`Access.check`), its rate limits (`RateLimiter`, counted in one
`RateLimiterDeployment` replica so that they hold across ingress replicas) and the
tokens its answers used (`Access.charge`); and the request's grants and id as the
endpoints read them (`grants_of`, `request_id_of`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from serving.auth import ALL, ApiKey, Grants, KeyLimits, KeyStore, authorize
from serving.errors import REQUEST_ID_HEADER, RateLimitError

__all__ = ["RateLimiter", "limited", "raise_rate_limited", "RateLimiterDeployment", "Access",
           "grants_of", "request_id_of", "audited", "audit_record"]

logger = logging.getLogger(__name__)


def grants_of(raw: Request) -> Grants:
    """The grants of the request's API key (all, on open paths or with auth off)."""
    key: ApiKey | None = getattr(raw.state, "api_key", None)
    return key.grants if key is not None else ALL


def request_id_of(raw: Request) -> str:
    """The request's id: the client's `x-request-id`, else a new one, kept on the request."""
    rid = getattr(raw.state, "request_id", None) or raw.headers.get(REQUEST_ID_HEADER) \
        or uuid.uuid4().hex
    raw.state.request_id = rid
    return rid


def audited(audit: Any, raw: Request, action: str, obj: str) -> Any:
    """`serving.audit.AuditLog.action` for this request's key and id; a no-op context
    (yielding a dict all the same) without an audit log."""
    if audit is None:
        return contextlib.nullcontext({})
    return audit.action(action, obj, getattr(raw.state, "api_key", None), request_id_of(raw))


def audit_record(audit: Any, raw: Request, action: str, obj: str, outcome: str,
                 detail: Any = None) -> None:
    """One audit line for this request's key and id (nothing without an audit log)."""
    if audit is not None:
        audit.record(action, obj, outcome, getattr(raw.state, "api_key", None),
                     request_id_of(raw), detail)


@dataclass
class _Bucket:
    capacity: float
    level: float
    updated: float

    def refill(self, now: float) -> None:
        rate = self.capacity / 60.0
        self.level = min(self.capacity, self.level + (now - self.updated) * rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (0 if it is)."""
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing / (self.capacity / 60.0)


@dataclass
class RateLimiter:
    """Token buckets per key name: one for requests, one for tokens, each refilling its
    per-minute limit evenly over the minute (burst = the whole minute's budget).

    `acquire` takes one request (and needs the token bucket out of debt); `charge`
    debits the tokens an answer used, possibly into debt."""

    clock: Any = time.monotonic
    _requests: dict[str, _Bucket] = field(default_factory=dict)
    _tokens: dict[str, _Bucket] = field(default_factory=dict)

    def _bucket(self, table: dict[str, _Bucket], name: str, limit: int) -> _Bucket:
        now = self.clock()
        bucket = table.get(name)
        if bucket is None or bucket.capacity != limit:
            bucket = table[name] = _Bucket(float(limit), float(limit), now)
        bucket.refill(now)
        return bucket

    def acquire(self, name: str, limits: dict[str, Any]) -> dict[str, Any]:
        """{"ok": True, headers} or {"ok": False, "retry_after": s, "limit": which, headers}."""
        rpm, tpm = limits.get("requests_per_minute"), limits.get("tokens_per_minute")
        headers: dict[str, str] = {}
        waits = []
        req = tok = None
        if rpm:
            req = self._bucket(self._requests, name, rpm)
            waits.append(("requests", req.wait_for(1.0)))
        if tpm:
            tok = self._bucket(self._tokens, name, tpm)
            # Out of debt is enough to start: the answer's size is unknown until it ends.
            waits.append(("tokens", tok.wait_for(min(1.0, tok.capacity))))
        blocked = [(what, s) for what, s in waits if s > 0]
        if req is not None:
            headers["x-ratelimit-limit-requests"] = str(rpm)
        if tok is not None:
            headers["x-ratelimit-limit-tokens"] = str(tpm)
            headers["x-ratelimit-remaining-tokens"] = str(max(0, math.floor(tok.level)))
        if blocked:
            what, wait = max(blocked, key=lambda b: b[1])
            if req is not None:
                headers["x-ratelimit-remaining-requests"] = str(max(0, math.floor(req.level)))
            return {"ok": False, "limit": what, "retry_after": wait, "headers": headers}
        if req is not None:
            req.level -= 1.0
            headers["x-ratelimit-remaining-requests"] = str(max(0, math.floor(req.level)))
        return {"ok": True, "headers": headers}

    def charge(self, name: str, limits: dict[str, Any], tokens: int) -> None:
        tpm = limits.get("tokens_per_minute")
        if tpm and tokens > 0:
            self._bucket(self._tokens, name, tpm).level -= tokens


def limited(limits: KeyLimits) -> bool:
    return bool(limits.requests_per_minute or limits.tokens_per_minute)


def raise_rate_limited(key: ApiKey, verdict: dict[str, Any]) -> None:
    retry = max(1, math.ceil(verdict["retry_after"]))
    what = verdict["limit"]
    limit = (key.limits.requests_per_minute if what == "requests"
             else key.limits.tokens_per_minute)
    raise RateLimitError(
        f"Rate limit reached for API key {key.name!r}: {limit} {what} per minute. "
        f"Try again in {retry}s.",
        retry_after=retry, headers=verdict.get("headers"),
        code="rate_limit_exceeded")


class RateLimiterDeployment:
    """The single counter of every key's usage (one replica), so that limits hold across
    ingress replicas. A call costs one handle round trip (~1-2 ms) and is made only for
    keys that have limits."""

    def __init__(self) -> None:
        self.limiter = RateLimiter()

    async def acquire(self, name: str, limits: dict[str, Any]) -> dict[str, Any]:
        return self.limiter.acquire(name, limits)

    async def charge(self, name: str, limits: dict[str, Any], tokens: int) -> None:
        self.limiter.charge(name, limits, tokens)

    async def ping(self) -> bool:
        return True


class Access:
    """What the ingress runs before every request: authenticate, check the scope, take
    one request from the key's budget; and after an answer, charge its tokens.

    `limiter` is a handle to `RateLimiterDeployment` (or None when no key has limits)."""

    def __init__(self, store: KeyStore, limiter: Any | None = None, audit: Any | None = None):
        self.store = store
        self.limiter = limiter
        self.audit = audit  # serving.audit.AuditLog: key reloads are recorded there
        self._background: set[Any] = set()

    def refresh_keys(self) -> None:
        change = self.store.refresh()
        if change is not None and self.audit is not None:
            outcome = "error" if "error" in change else "ok"
            self.audit.record("keys.reload", "keys_file", outcome, key=None, detail=change)

    async def check(self, method: str, path: str, headers: Any) -> ApiKey | None:
        self.refresh_keys()
        key = authorize(self.store, method, path, headers)
        if key is None or self.limiter is None or not limited(key.limits):
            return key
        verdict = await self.limiter.acquire.remote(key.name, key.limits_dict)
        if not verdict["ok"]:
            raise_rate_limited(key, verdict)
        return key

    def charge(self, key: ApiKey | None, tokens: int) -> None:
        """Debit `tokens` from the key's minute (fire and forget: the answer is sent)."""
        if (key is None or self.limiter is None or tokens <= 0
                or not key.limits.tokens_per_minute):
            return
        task = asyncio.ensure_future(self._charge(key, tokens))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _charge(self, key: ApiKey, tokens: int) -> None:
        try:
            await self.limiter.charge.remote(key.name, key.limits_dict, tokens)
        except Exception as err:  # the answer is already out; log and go on
            logger.warning("could not charge %d tokens to key %s: %r",
                                                tokens, key.name, err)
