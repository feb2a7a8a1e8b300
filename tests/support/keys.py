"""The API keys of the e2e session server (auth is on there, as in production).

`ADMIN` is what the e2e tests send (and, as $LORAG_API_KEY, lorag's own clients they
run: eval, ingest, locust). The tenant keys give the fuzzer keys of narrower grants:
`TENANT` sees only documents with metadata tenant "a" of indexes `fuzz-*` and the
routes; `READER` may call `base` only.
"""

from __future__ import annotations

import os

from serving.auth import hash_key

__all__ = ["ADMIN", "TENANT", "READER", "AUTH", "headers", "config_keys"]

ADMIN = os.environ.get("LORAG_TEST_API_KEY") or "sk-lorag-e2e-admin-000000000000000"
TENANT = "sk-lorag-e2e-tenant-a-0000000000000"
READER = "sk-lorag-e2e-reader-00000000000000"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def headers(key: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def config_keys() -> list[dict]:
    """`server.auth.keys` of the session server's config (digests only)."""
    return [
        {"name": "e2e", "scopes": ["admin"], "sha256": hash_key(ADMIN)},
        {"name": "tenant-a", "sha256": hash_key(TENANT), "indexes": ["fuzz-*"],
         "adapters": [], "filter": {"tenant": "a"},
         "manages": {"indexes": ["fuzz-*"]}},
        {"name": "reader", "sha256": hash_key(READER), "routes": ["base"], "indexes": [],
         "adapters": []},
    ]
