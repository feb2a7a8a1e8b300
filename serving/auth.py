"""API keys, scopes and per-key rate limits of the OpenAI-compatible ingress.

Keys come from three places, all merged: the config (`server.auth.keys`, hashes
only), a key file (`server.auth.keys_file`, a mounted Kubernetes Secret) and the
environment (`LORAG_API_KEYS`). The last two may hold plain keys; they are
hashed when read and the plain text is dropped. A request's key is hashed and
looked up by its SHA-256 digest: API keys are long random strings, so an
unsalted fast hash is the usual choice (as GitHub and Stripe store tokens), and a
digest leaked from a config file does not give the key.

Scopes: `user` (inference and model listing) and `admin` (adapters, indexes,
deployments), and `admin` includes `user`. `/health` and `/metrics` stay open, as
with `vllm serve --api-key`, so that probes and Prometheus need no key.

    >>> store = KeyStore.from_config(config.server.auth)
    >>> store.authenticate("Bearer sk-lorag-...")        # -> ApiKey or raises 401
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from lorag_core.strict import StrictModel as _Strict
from serving.errors import AuthenticationError, PermissionDeniedError, RateLimitError

__all__ = ["KEYS_ENV", "CLIENT_KEY_ENV", "KEY_PREFIX", "ANONYMOUS", "Scope", "KeyLimits",
           "ApiKeyEntry", "AuthConfig", "hash_key", "new_key", "ApiKey", "KeyStore",
           "required_scope", "authorize", "RateLimiter", "limited", "raise_rate_limited",
           "RateLimiterDeployment", "Access", "client_headers"]

KEYS_ENV = "LORAG_API_KEYS"
CLIENT_KEY_ENV = "LORAG_API_KEY"  # the key lorag's own clients send (eval, ingest, locust)
KEY_PREFIX = "sk-lorag-"
ANONYMOUS = "anonymous"

Scope = Literal["user", "admin"]


class KeyLimits(_Strict):
    """Per-key rate limits; null means no limit. Counted per key across all replicas."""

    requests_per_minute: int | None = Field(default=None, ge=1,
                                            description="Requests a key may start a minute.")
    tokens_per_minute: int | None = Field(
        default=None, ge=1,
        description="Prompt + completion tokens a key may use a minute (charged when an "
        "answer ends; a key in debt waits until the minute's budget refills).")


class ApiKeyEntry(_Strict):
    """One key: its name (logs, metrics), scopes, limits, and the key's SHA-256 digest.

    In a key file or `LORAG_API_KEYS` an entry may give the plain `key` instead; it is
    hashed when read. The config file itself accepts digests only."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$",
                      description="The key's name in logs and metrics (not secret).")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                               description="hex SHA-256 of the key (`lorag keys create`).")
    key: str | None = Field(default=None, min_length=16, repr=False,
                            description="the plain key (key files and the environment only)")
    scopes: list[Scope] = Field(
        default_factory=lambda: ["user"], min_length=1,
        description="user: inference and model listing; admin: adapters, indexes and "
        "deployments as well (admin includes user).")
    limits: KeyLimits | None = Field(default=None,
                                     description="null: server.auth.default_limits")

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKeyEntry:
        if (self.sha256 is None) == (self.key is None):
            raise ValueError(f"key {self.name!r}: give exactly one of sha256 and key")
        return self

    def digest(self) -> str:
        return self.sha256 or hash_key(self.key or "")


class AuthConfig(_Strict):
    """Who may call the API (`server.auth`)."""

    enabled: bool = Field(
        default=True,
        description="Require an API key on /v1/*. false is for local use only: the server "
        "then refuses to bind anything but a loopback address, and says auth is off.")
    keys: list[ApiKeyEntry] = Field(
        default_factory=list, description="Keys by SHA-256 digest (never plain keys here).")
    keys_file: str | None = Field(
        default=None,
        description="YAML/JSON list of keys, e.g. a mounted Secret (entries may hold plain "
        "`key`s); relative to this config file. Read at start-up.")
    default_limits: KeyLimits = Field(default_factory=KeyLimits,
                                      description="Limits of keys that set none.")
    anonymous_limits: KeyLimits = Field(
        default_factory=KeyLimits,
        description="Limits shared by all callers when auth is off.")

    @model_validator(mode="after")
    def _hashes_only(self) -> AuthConfig:
        for i, entry in enumerate(self.keys):
            if entry.key is not None:
                raise ValueError(f"keys.{i}: plain keys are not accepted in the config file; "
                                 "give `sha256` (see `lorag keys create`) or use keys_file "
                                 f"/ ${KEYS_ENV}")
        return self


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh key: the prefix and 32 random bytes (256 bits), URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ApiKey:
    name: str
    scopes: frozenset[str]
    limits: KeyLimits

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @cached_property
    def limits_dict(self) -> dict[str, Any]:
        """`limits` as the rate limiter's calls take it (made once, not per request)."""
        return self.limits.model_dump()


def _entries(text: str, where: str) -> list[ApiKeyEntry]:
    try:
        data = yaml.safe_load(text) if text.strip() else []
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: not YAML/JSON ({err.__class__.__name__})") from None
    if isinstance(data, dict) and "keys" in data:
        data = data["keys"]
    if not isinstance(data, list):
        raise ValueError(f"{where}: expected a list of keys")
    out = []
    for i, item in enumerate(data):
        try:
            out.append(ApiKeyEntry.model_validate(item))
        except ValidationError as err:
            first = err.errors(include_url=False, include_input=False)[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{where}: entry {i}{'.' + loc if loc else ''}: "
                             f"{first['msg']}") from None
    return out


class KeyStore:
    """Digest -> key, built once per ingress replica."""

    def __init__(self, config: AuthConfig, entries: list[ApiKeyEntry]):
        self.enabled = config.enabled
        self.anonymous = ApiKey(ANONYMOUS, frozenset({"admin"}), config.anonymous_limits)
        self._by_digest: dict[str, ApiKey] = {}
        names: set[str] = set()
        for entry in entries:
            if entry.name in names:
                raise ValueError(f"duplicate API key name {entry.name!r}")
            names.add(entry.name)
            self._by_digest[entry.digest()] = ApiKey(
                entry.name, frozenset(entry.scopes), entry.limits or config.default_limits)
        if self.enabled and not self._by_digest:
            raise ValueError("server.auth.enabled is true but no API key is configured: add "
                             f"keys (server.auth.keys, keys_file or ${KEYS_ENV}; "
                             "`lorag keys create` makes one) or set server.auth.enabled: "
                             "false for local use")

    @classmethod
    def from_config(cls, config: AuthConfig,
                    environ: dict[str, str] | None = None) -> KeyStore:
        environ = os.environ if environ is None else environ
        entries = list(config.keys)
        if config.keys_file:
            path = Path(config.keys_file)
            try:
                text = path.read_text()
            except OSError as err:
                raise ValueError(f"server.auth.keys_file: cannot read {path} "
                                 f"({err.strerror})") from None
            entries += _entries(text, f"server.auth.keys_file {path}")
        if environ.get(KEYS_ENV):
            entries += _entries(environ[KEYS_ENV], f"${KEYS_ENV}")
        return cls(config, entries)

    @property
    def names(self) -> list[str]:
        return sorted(k.name for k in self._by_digest.values())

    def authenticate(self, authorization: str | None, x_api_key: str | None = None) -> ApiKey:
        """The key of a request, from `Authorization: Bearer <key>` (OpenAI's clients) or
        `x-api-key`; 401 when missing or unknown."""
        if not self.enabled:
            return self.anonymous
        key = None
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                key = value.strip()
        key = key or (x_api_key or "").strip() or None
        if key is None:
            raise AuthenticationError(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.",
                code="missing_api_key")
        # Looked up by digest: timing reveals nothing about stored keys, since a caller
        # cannot steer the digest of a guess byte by byte.
        found = self._by_digest.get(hash_key(key))
        if found is None:
            raise AuthenticationError("Incorrect API key provided.", code="invalid_api_key")
        return found


# -- which scope a request needs ------------------------------------------------------

_USER_POST = {"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}
_OPEN = {"/health", "/metrics"}


def required_scope(method: str, path: str) -> str | None:
    """`user`, `admin`, or None for open paths. Unknown /v1 paths need `user` (they 404
    after authentication, so an unauthenticated caller learns nothing from them)."""
    if path in _OPEN or not path.startswith("/v1"):
        return None
    if method == "POST" and path in _USER_POST:
        return "user"
    if method in ("GET", "HEAD") and (path == "/v1/models" or path.startswith("/v1/models/")):
        return "user"
    if path.startswith(("/v1/adapters", "/v1/indexes", "/v1/deployments")):
        return "admin"
    return "user"


def authorize(store: KeyStore, method: str, path: str, headers: Any) -> ApiKey | None:
    """The caller's key for this request (None on open paths); 401 or 403 otherwise."""
    scope = required_scope(method, path)
    if scope is None:
        return None
    key = store.authenticate(headers.get("authorization"), headers.get("x-api-key"))
    if not key.allows(scope):
        raise PermissionDeniedError(
            f"API key {key.name!r} lacks the {scope!r} scope needed for {method} {path}.",
            code="insufficient_scope")
    return key


# -- rate limits ----------------------------------------------------------------------


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

    def __init__(self, store: KeyStore, limiter: Any | None = None):
        self.store = store
        self.limiter = limiter
        self._background: set[Any] = set()

    async def check(self, method: str, path: str, headers: Any) -> ApiKey | None:
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
        import asyncio

        task = asyncio.ensure_future(self._charge(key, tokens))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _charge(self, key: ApiKey, tokens: int) -> None:
        try:
            await self.limiter.charge.remote(key.name, key.limits_dict, tokens)
        except Exception as err:  # the answer is already out; log and go on
            import logging

            logging.getLogger(__name__).warning("could not charge %d tokens to key %s: %r",
                                                tokens, key.name, err)


def client_headers(environ: dict[str, str] | None = None) -> dict[str, str]:
    """What lorag's own clients (eval, ingest, the locust suite) send: the key in
    $LORAG_API_KEY as a bearer token, or nothing when it is unset."""
    key = (os.environ if environ is None else environ).get(CLIENT_KEY_ENV, "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}
