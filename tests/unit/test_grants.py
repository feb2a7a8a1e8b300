"""Per-key grants, key file reloads, the audit trail and `lorag keys` (no Ray: the
whole-server attacks are in tests/serve/test_tenants.py)."""

import argparse
import json
import os

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from serving.audit import AuditLog
from serving.access import Access
from serving.auth import ApiKeyEntry, AuthConfig, Grants, KeyStore, hash_key
from serving.errors import AuthenticationError
from serving.keys_cli import create, list_keys, revoke

KEY_A, KEY_B = "sk-lorag-tenant-a-0000000000000", "sk-lorag-tenant-b-0000000000000"


def entry(**kw):
    return ApiKeyEntry.model_validate({"name": "k", "sha256": "0" * 64, **kw})


def test_grants_are_globs_and_manages_implies_reads():
    g = Grants.of(entry(routes=["team-a-*", "rag"], indexes=["a-docs"], adapters=[],
                        manages={"indexes": ["a-*"], "adapters": ["a-tone"]}))
    assert g.uses_route("team-a-chat") and g.uses_route("rag") and not g.uses_route("rag2")
    assert g.reads_index("a-docs") and g.reads_index("a-new") and not g.reads_index("b-docs")
    assert g.manages_index("a-new") and not g.manages_index("b-new")
    assert g.uses_adapter("a-tone") and g.manages_adapter("a-tone")
    assert not g.uses_adapter("b-tone") and not g.manages_adapter("b-tone")
    default = Grants.of(entry())
    assert default.reads_index("x") and not default.manages_index("x")
    assert default.uses_route("r") and default.uses_adapter("y") and default.filter is None
    admin = Grants.of(entry(scopes=["admin"]))
    assert admin.manages_index("x") and admin.manages_adapter("y") and admin.uses_route("z")


@pytest.mark.parametrize("bad,match", [
    ({"scopes": ["admin"], "filter": {"tenant": "a"}}, "admin key may do everything"),
    ({"scopes": ["admin"], "routes": ["r"]}, "admin key may do everything"),
    ({"filter": {"$or": [{"a": 1}]}}, "filter"),
    ({"filter": {"tenant": {"$regex": "."}}}, "filter"),
    ({"routes": ["a b"]}, "pattern"),
    ({"manages": {"indexes": ["x"], "everything": True}}, "Extra inputs"),
])
def test_bad_grants_are_refused_at_load(bad, match):
    with pytest.raises(ValueError, match=match):
        entry(**bad)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def write_keys(path, entries):
    """As a Kubernetes Secret volume updates: a new file renamed over the old one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries))
    os.replace(tmp, path)


def test_key_file_changes_are_read_within_the_interval(tmp_path):
    path = tmp_path / "keys.json"
    write_keys(path, [{"name": "a", "key": KEY_A}])
    clock = Clock()
    store = KeyStore.from_config(AuthConfig(keys_file=str(path), reload_interval_s=2), {})
    store._clock = clock
    store._checked = 0.0
    assert store.authenticate(f"Bearer {KEY_A}").name == "a"
    write_keys(path, [{"name": "b", "key": KEY_B, "filter": {"tenant": "b"}}])
    clock.now = 1.0
    assert store.refresh() is None  # not yet due: one stat() at most per interval
    assert store.authenticate(f"Bearer {KEY_A}").name == "a"
    clock.now = 2.5
    assert store.refresh() == {"added": ["b"], "removed": ["a"], "changed": []}
    with pytest.raises(AuthenticationError):
        store.authenticate(f"Bearer {KEY_A}")
    assert store.authenticate(f"Bearer {KEY_B}").grants.filter == {"tenant": "b"}
    clock.now = 5.0
    assert store.refresh() is None  # unchanged file: nothing re-read
    # A broken file is refused whole; the keys in force stay.
    path.write_text("[{name: b, key: short}]")
    clock.now = 8.0
    change = store.refresh()
    assert "error" in change and "entry 0" in change["error"]
    assert store.authenticate(f"Bearer {KEY_B}").name == "b"
    # A grant changed in place counts as changed.
    write_keys(path, [{"name": "b", "key": KEY_B, "filter": {"tenant": "c"}}])
    clock.now = 11.0
    assert store.refresh() == {"added": [], "removed": [], "changed": ["b"]}
    # Keys from $LORAG_API_KEYS stay across reloads (read once, digests only).
    env = {"LORAG_API_KEYS": json.dumps([{"name": "env", "key": KEY_A}])}
    store = KeyStore.from_config(AuthConfig(keys_file=str(path), reload_interval_s=0.01), env)
    write_keys(path, [])
    import time
    time.sleep(0.02)
    assert store.refresh() == {"added": [], "removed": ["b"], "changed": []}
    assert store.authenticate(f"Bearer {KEY_A}").name == "env"
    assert KEY_A not in repr(vars(store))
    # Revoking the last key of the file takes effect too: every request is then refused.
    write_keys(path, [{"name": "b", "key": KEY_B}])
    time.sleep(0.02)
    store.refresh()
    last = KeyStore.from_config(AuthConfig(keys_file=str(path), reload_interval_s=0.01), {})
    write_keys(path, [])
    time.sleep(0.02)
    assert last.refresh() == {"added": [], "removed": ["b"], "changed": []}
    with pytest.raises(AuthenticationError):
        last.authenticate(f"Bearer {KEY_B}")


def test_audit_lines_and_counter(tmp_path):
    registry = CollectorRegistry()
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path), registry, "replica-1")
    audit.record("document.add", "kb/d1", "ok", key="team-a", request_id="r1")
    audit.record("keys.reload", "keys_file", "ok", detail={"added": ["x"]})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [set(line) >= {"time", "key", "request_id", "action", "object", "outcome"}
            for line in lines] == [True, True]
    assert lines[0]["key"] == "team-a" and lines[0]["object"] == "kb/d1"
    assert lines[1]["detail"] == {"added": ["x"]} and lines[1]["replica"] == "replica-1"
    text = generate_latest(registry).decode()
    assert 'lorag_audit_events_total{action="document.add",outcome="ok"} 1.0' in text
    off = AuditLog(None, CollectorRegistry())
    off.record("index.delete", "kb", "ok")  # no file, no error; the counter still counts


@pytest.mark.asyncio
async def test_audit_action_records_the_error_code(tmp_path):
    from serving.errors import ConflictError

    audit = AuditLog(str(tmp_path / "a.jsonl"), CollectorRegistry())
    with pytest.raises(ConflictError):
        async with audit.action("index.delete", "kb", None, "r2"):
            raise ConflictError("in use", code="index_in_use")
    async with audit.action("index.create", "kb2", None, "r3") as extra:
        extra["detail"] = {"documents": 0}
    lines = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [(x["action"], x["outcome"]) for x in lines] == [
        ("index.delete", "index_in_use"), ("index.create", "ok")]


def test_access_audits_key_reloads(tmp_path):
    path = tmp_path / "keys.json"
    write_keys(path, [{"name": "a", "key": KEY_A}])
    store = KeyStore.from_config(AuthConfig(keys_file=str(path), reload_interval_s=0.01), {})
    audit = AuditLog(str(tmp_path / "audit.jsonl"), CollectorRegistry())
    access = Access(store, None, audit)
    write_keys(path, [{"name": "a", "key": KEY_A}, {"name": "b", "key": KEY_B}])
    import time
    time.sleep(0.02)
    access.refresh_keys()
    line = json.loads((tmp_path / "audit.jsonl").read_text())
    assert line["action"] == "keys.reload" and line["detail"]["added"] == ["b"]
    assert KEY_B not in (tmp_path / "audit.jsonl").read_text()


def keys_args(**kw):
    base = {"name": None, "scope": None, "file": None, "routes": None, "indexes": None,
            "adapters": None, "filter": None, "manages_index": None, "manages_adapter": None}
    return argparse.Namespace(**{**base, **kw})


def test_lorag_keys_create_list_revoke(tmp_path, capsys):
    path = tmp_path / "secret" / "keys.yaml"
    assert create(keys_args(name="team-a", file=str(path), filter='{"tenant": "a"}',
                            manages_index=["shared"])) == 0
    key = next(w for w in capsys.readouterr().out.split() if w.startswith("sk-lorag-"))
    assert key.startswith("sk-lorag-") and key not in path.read_text()
    assert create(keys_args(name="ops", scope=["admin"], file=str(path))) == 0
    capsys.readouterr()
    store = KeyStore.from_config(AuthConfig(keys_file=str(path)), {})
    assert store.authenticate(f"Bearer {key}").grants.manages_index("shared")
    list_keys(keys_args(file=str(path)))
    out = capsys.readouterr().out
    assert "team-a\tuser\tsha256:" + hash_key(key)[:12] in out and "ops\tadmin" in out
    with pytest.raises(SystemExit, match="already has"):
        create(keys_args(name="ops", file=str(path)))
    with pytest.raises(SystemExit, match="admin key may do everything"):
        create(keys_args(name="x", scope=["admin"], filter='{"t": 1}', file=str(path)))
    assert revoke(keys_args(name="team-a", file=str(path))) == 0
    with pytest.raises(SystemExit, match="no key named"):
        revoke(keys_args(name="team-a", file=str(path)))
    assert KeyStore.from_config(AuthConfig(keys_file=str(path)), {}).names == ["ops"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
