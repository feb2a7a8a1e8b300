"""API keys, their scopes and grants, and the key store of the OpenAI-compatible ingress
(what each request then meets, rate limits included: `serving.access`).

Keys come from three places, all merged: the config (`server.auth.keys`, hashes
only), a key file (`server.auth.keys_file`, a mounted Kubernetes Secret) and the
environment (`LORAG_API_KEYS`). The last two may hold plain keys; they are
hashed when read and the plain text is dropped. A request's key is hashed and
looked up by its SHA-256 digest: API keys are long random strings, so an
unsalted fast hash is the usual choice (as GitHub and Stripe store tokens), and a
digest leaked from a config file does not give the key.

Scopes: `user` and `admin`. An `admin` key may do everything: every route, index and
adapter, `/v1/deployments`. A `user` key has grants (`Grants`): the routes, indexes and
adapters it may use (allow-lists of names or glob patterns, all by default), the
indexes and adapters it manages (`manages`: per-object admin), and a metadata `filter`
ANDed into every search, listing and read it makes, which also stamps and bounds its
writes. What a key may not see does not exist for it: it gets the same 404 as for a
name that does not exist. `/health` and `/metrics` stay open, as with
`vllm serve --api-key`, so that probes and Prometheus need no key.

The key file is re-read when it changes (`KeyStore.refresh`, at most every
`reload_interval_s`), so keys are added and revoked without a restart.

    >>> store = KeyStore.from_config(config.server.auth)
    >>> store.authenticate("Bearer sk-lorag-...")        # -> ApiKey or raises 401
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from lorag_core.strict import StrictModel as _Strict
from serving.errors import AuthenticationError, PermissionDeniedError

__all__ = ["Grants", "Manages", "parse_key_entries", "KEYS_ENV", "CLIENT_KEY_ENV", "KEY_PREFIX", "ANONYMOUS", "Scope", "KeyLimits",
           "ApiKeyEntry", "AuthConfig", "hash_key", "new_key", "ApiKey", "KeyStore",
           "required_scope", "authorize", "client_headers", "ALL"]

KEYS_ENV = "LORAG_API_KEYS"
CLIENT_KEY_ENV = "LORAG_API_KEY"  # the key lorag's own clients send (eval, ingest, locust)
KEY_PREFIX = "sk-lorag-"
ANONYMOUS = "anonymous"

Scope = Literal["user", "admin"]
Pattern = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@*?\[\]-]+$")]

logger = logging.getLogger(__name__)


class KeyLimits(_Strict):
    """Per-key rate limits; null means no limit. Counted per key across all replicas."""

    requests_per_minute: int | None = Field(default=None, ge=1,
                                            description="Requests a key may start a minute.")
    tokens_per_minute: int | None = Field(
        default=None, ge=1,
        description="Prompt + completion tokens a key may use a minute (charged when an "
        "answer ends; a key in debt waits until the minute's budget refills).")


class Manages(_Strict):
    """What a `user` key administers: index and adapter names or glob patterns."""

    indexes: list[Pattern] = Field(
        default_factory=list,
        description="Indexes it may create, delete and write documents to (with a "
        "`filter`: only documents passing it, and not delete the index).")
    adapters: list[Pattern] = Field(default_factory=list,
                                    description="Adapters it may load and unload.")


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
    routes: list[Pattern] = Field(default_factory=lambda: ["*"],
                                  description="Routes it may call (names or glob patterns).")
    indexes: list[Pattern] = Field(
        default_factory=lambda: ["*"],
        description="Indexes it may read: search, documents, the chat `index` field.")
    adapters: list[Pattern] = Field(default_factory=lambda: ["*"],
                                    description="Adapters it may call by name.")
    filter: dict[str, Any] | None = Field(
        default=None,
        description="Metadata filter (the search filter language) ANDed into every "
        "search, listing and read this key makes; its writes are stamped with its "
        "equality fields and may not touch documents outside it.")
    manages: Manages = Field(default_factory=Manages,
                             description="Per-object admin of a `user` key.")

    @model_validator(mode="after")
    def _one_secret(self) -> ApiKeyEntry:
        if (self.sha256 is None) == (self.key is None):
            raise ValueError(f"key {self.name!r}: give exactly one of sha256 and key")
        if "admin" in self.scopes and (
                self.filter or self.manages.indexes or self.manages.adapters
                or any(g != ["*"] for g in (self.routes, self.indexes, self.adapters))):
            raise ValueError(f"key {self.name!r}: an admin key may do everything; give "
                             "grants (routes, indexes, adapters, filter, manages) to a "
                             "`user` key instead")
        if self.filter is not None:
            from retrieval.filters import compile_filter

            try:
                compile_filter(self.filter)
            except Exception as err:  # InvalidInputError: say which key
                raise ValueError(f"key {self.name!r}: filter: {err}") from None
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
        "`key`s); relative to this config file. Re-read when it changes.")
    reload_interval_s: float = Field(
        default=2.0, gt=0, le=300,
        description="How often each ingress replica looks at keys_file for changes: a key "
        "added or revoked there is honoured within this many seconds of the change.")
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


def _file_stamp(path: str | None) -> tuple[int, int, int] | None:
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh key: the prefix and 32 random bytes (256 bits), URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _any(patterns: tuple[str, ...], name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass(frozen=True)
class Grants:
    """What one key may use and manage (ApiKeyEntry's grants, checked per request)."""

    admin: bool = False
    routes: tuple[str, ...] = ("*",)
    indexes: tuple[str, ...] = ("*",)
    adapters: tuple[str, ...] = ("*",)
    filter: dict[str, Any] | None = None
    manages_indexes: tuple[str, ...] = ()
    manages_adapters: tuple[str, ...] = ()

    @classmethod
    def of(cls, entry: ApiKeyEntry) -> Grants:
        return cls("admin" in entry.scopes, tuple(entry.routes), tuple(entry.indexes),
                   tuple(entry.adapters), entry.filter or None, tuple(entry.manages.indexes),
                   tuple(entry.manages.adapters))

    def uses_route(self, name: str) -> bool:
        return self.admin or _any(self.routes, name)

    def reads_index(self, name: str) -> bool:
        return self.admin or _any(self.indexes, name) or self.manages_index(name)

    def manages_index(self, name: str) -> bool:
        return self.admin or _any(self.manages_indexes, name)

    def uses_adapter(self, name: str) -> bool:
        return self.admin or _any(self.adapters, name) or self.manages_adapter(name)

    def manages_adapter(self, name: str) -> bool:
        return self.admin or _any(self.manages_adapters, name)


ALL = Grants(admin=True)


@dataclass(frozen=True)
class ApiKey:
    name: str
    scopes: frozenset[str]
    limits: KeyLimits
    grants: Grants = ALL

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @cached_property
    def limits_dict(self) -> dict[str, Any]:
        """`limits` as the rate limiter's calls take it (made once, not per request)."""
        return self.limits.model_dump()


def parse_key_entries(text: str, where: str) -> list[ApiKeyEntry]:
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
            entry = ApiKeyEntry.model_validate(item)
            # keep the digest only: the plain key is dropped as soon as it is read
            out.append(entry.model_copy(update={"sha256": entry.digest(), "key": None}))
        except ValidationError as err:
            first = err.errors(include_url=False, include_input=False)[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{where}: entry {i}{'.' + loc if loc else ''}: "
                             f"{first['msg']}") from None
    return out


class KeyStore:
    """Digest -> key, one per ingress replica; `refresh` re-reads a changed key file."""

    def __init__(self, config: AuthConfig, entries: list[ApiKeyEntry],
                 env_entries: list[ApiKeyEntry] | None = None, clock: Any = time.monotonic):
        self.enabled = config.enabled
        self.config = config
        self._env_entries = env_entries or []  # $LORAG_API_KEYS: read once, digests only
        self.anonymous = ApiKey(ANONYMOUS, frozenset({"admin"}), config.anonymous_limits)
        self._by_digest = self._table(entries)
        self._clock = clock
        self._checked = clock()
        self._stamp = _file_stamp(config.keys_file)

    def _table(self, entries: list[ApiKeyEntry], at_start: bool = True
               ) -> dict[str, ApiKey]:
        table: dict[str, ApiKey] = {}
        names: set[str] = set()
        for entry in entries:
            if entry.name in names:
                raise ValueError(f"duplicate API key name {entry.name!r}")
            names.add(entry.name)
            table[entry.digest()] = ApiKey(entry.name, frozenset(entry.scopes),
                                           entry.limits or self.config.default_limits,
                                           Grants.of(entry))
        if self.enabled and not table and at_start:  # a reload may revoke the last key
            raise ValueError("server.auth.enabled is true but no API key is configured: add "
                             f"keys (server.auth.keys, keys_file or ${KEYS_ENV}; "
                             "`lorag keys create` makes one) or set server.auth.enabled: "
                             "false for local use")
        return table

    @staticmethod
    def file_entries(config: AuthConfig) -> list[ApiKeyEntry]:
        """The config's keys and the key file's (read now)."""
        entries = list(config.keys)
        if config.keys_file:
            path = Path(config.keys_file)
            try:
                text = path.read_text()
            except OSError as err:
                raise ValueError(f"server.auth.keys_file: cannot read {path} "
                                 f"({err.strerror})") from None
            entries += parse_key_entries(text, f"server.auth.keys_file {path}")
        return entries

    @classmethod
    def from_config(cls, config: AuthConfig,
                    environ: dict[str, str] | None = None) -> KeyStore:
        environ = os.environ if environ is None else environ
        stamp = _file_stamp(config.keys_file)  # before reading: a change after it is seen
        env = parse_key_entries(environ[KEYS_ENV], f"${KEYS_ENV}") if environ.get(KEYS_ENV) else []
        store = cls(config, cls.file_entries(config) + env, env)
        store._stamp = stamp
        return store

    def refresh(self) -> dict[str, Any] | None:
        """Re-read the key file if `reload_interval_s` has passed and it changed (a
        Kubernetes Secret volume swaps a symlink: its inode and mtime change). Returns
        what changed ({"added": [...], "removed": [...], "changed": [...]}, or
        {"error": message} when the new file is refused: the keys stay as they were),
        None when nothing was re-read."""
        now = self._clock()
        if not self.config.keys_file or now - self._checked < self.config.reload_interval_s:
            return None
        self._checked = now
        stamp = _file_stamp(self.config.keys_file)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        try:
            table = self._table(self.file_entries(self.config) + self._env_entries,
                                at_start=False)
        except ValueError as err:
            logger.error("API keys not reloaded, the previous keys stay: %s", err)
            return {"error": str(err)}
        before = {k.name: (d, k) for d, k in self._by_digest.items()}
        after = {k.name: (d, k) for d, k in table.items()}
        self._by_digest = table
        change = {"added": sorted(after.keys() - before.keys()),
                  "removed": sorted(before.keys() - after.keys()),
                  "changed": sorted(n for n in after.keys() & before.keys()
                                    if after[n] != before[n])}
        logger.info("API keys reloaded: %s", change)
        return change

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
    after authentication, so an unauthenticated caller learns nothing from them).
    Indexes and adapters need `user` here; what a key may read or manage of them is
    checked per object (`Grants`) by the endpoint."""
    if path in _OPEN or not path.startswith("/v1"):
        return None
    if path.startswith("/v1/deployments"):
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


def client_headers(environ: dict[str, str] | None = None) -> dict[str, str]:
    """What lorag's own clients (eval, ingest, the locust suite) send: the key in
    $LORAG_API_KEY as a bearer token, or nothing when it is unset."""
    key = (os.environ if environ is None else environ).get(CLIENT_KEY_ENV, "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}
