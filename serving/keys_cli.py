"""`lorag keys`: make, list and revoke API keys in a key file (`server.auth.keys_file`).

The server re-reads the key file when it changes (`serving.auth.KeyStore.refresh`), so a
key added or revoked here is honoured by every ingress replica within
`server.auth.reload_interval_s` of the file changing; in Kubernetes, update the Secret
the file is mounted from (the kubelet then swaps the file; allow for its sync delay too).

The file is rewritten whole, to a temporary file and then renamed over the old one, so
the server never reads half of it. New entries hold the key's SHA-256 digest, never the
plain key (which is printed once). Comments in the file are not kept.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from serving.auth import ApiKeyEntry, hash_key, new_key, parse_key_entries

__all__ = ["add_arguments", "create", "list_keys", "revoke"]


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text()) or []
    if isinstance(data, dict) and "keys" in data:
        data = data["keys"]
    if not isinstance(data, list):
        raise SystemExit(f"lorag keys: {path} is not a list of keys")
    parse_key_entries(path.read_text(), str(path))  # every entry valid before we change anything
    return data


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(entries, f, sort_keys=False, allow_unicode=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _grants(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in ("routes", "indexes", "adapters"):
        if getattr(args, field):
            out[field] = getattr(args, field)
    if args.filter:
        out["filter"] = json.loads(args.filter)
    manages = {k: v for k, v in (("indexes", args.manages_index),
                                 ("adapters", args.manages_adapter)) if v}
    if manages:
        out["manages"] = manages
    return out


def create(args: argparse.Namespace) -> int:
    key = new_key()
    entry = {"name": args.name, "scopes": args.scope or ["user"], "sha256": hash_key(key),
             **_grants(args)}
    try:
        ApiKeyEntry.model_validate(entry)
    except Exception as err:
        raise SystemExit(f"lorag keys create: {err}") from None
    print(f"API key (shown once; give it to the client):\n  {key}\n")
    if args.file:
        path = Path(args.file)
        entries = _read(path)
        if any(e.get("name") == args.name for e in entries):
            raise SystemExit(f"lorag keys create: {path} already has a key named "
                             f"{args.name!r}; revoke it first or choose another name")
        _write(path, [*entries, entry])
        print(f"added {args.name!r} to {path} (digest only); running servers read it within "
              "server.auth.reload_interval_s")
        return 0
    print("server.auth.keys entry for the config, or an entry of a key file (the digest):")
    print("  - " + json.dumps(entry))
    print("\nor, for $LORAG_API_KEYS (a Kubernetes Secret), with the plain key:")
    print("  " + json.dumps([{**{k: v for k, v in entry.items() if k != "sha256"},
                              "key": key}]))
    return 0


def list_keys(args: argparse.Namespace) -> int:
    for e in _read(Path(args.file)):
        digest = e.get("sha256") or hash_key(e.get("key") or "")
        grants = {k: e[k] for k in ("routes", "indexes", "adapters", "filter", "manages")
                  if k in e}
        print(f"{e['name']}\t{','.join(e.get('scopes', ['user']))}\tsha256:{digest[:12]}"
              + (f"\t{json.dumps(grants)}" if grants else ""))
    return 0


def revoke(args: argparse.Namespace) -> int:
    path = Path(args.file)
    entries = _read(path)
    kept = [e for e in entries if e.get("name") != args.name]
    if len(kept) == len(entries):
        raise SystemExit(f"lorag keys revoke: no key named {args.name!r} in {path}")
    _write(path, kept)
    print(f"revoked {args.name!r} in {path}; running servers refuse it within "
          "server.auth.reload_interval_s")
    return 0


def add_arguments(keys: argparse.ArgumentParser) -> None:
    sub = keys.add_subparsers(dest="keys_command", required=True)
    make = sub.add_parser("create", help="make a new API key (into a key file, or print "
                          "its config entry)")
    make.add_argument("--name", required=True, help="the key's name (logs, limits, audit)")
    make.add_argument("--scope", action="append", choices=["user", "admin"],
                      help="user (inference, and what its grants allow) or admin "
                      "(everything); default user")
    make.add_argument("--file", help="key file to add it to (server.auth.keys_file)")
    make.add_argument("--routes", nargs="+", help="routes it may call (globs)")
    make.add_argument("--indexes", nargs="+", help="indexes it may read (globs)")
    make.add_argument("--adapters", nargs="+", help="adapters it may call (globs)")
    make.add_argument("--filter", help='metadata filter ANDed into all its searches and '
                      'reads, e.g. \'{"tenant": "a"}\'')
    make.add_argument("--manages-index", nargs="+", help="indexes it administers (globs)")
    make.add_argument("--manages-adapter", nargs="+", help="adapters it administers (globs)")
    make.set_defaults(func=create)
    show = sub.add_parser("list", help="names, scopes, digests and grants of a key file")
    show.add_argument("--file", required=True)
    show.set_defaults(func=list_keys)
    drop = sub.add_parser("revoke", help="remove a key from a key file by name")
    drop.add_argument("--file", required=True)
    drop.add_argument("--name", required=True)
    drop.set_defaults(func=revoke)
