"""The audit trail of admin writes: one JSON line per action, and a Prometheus counter.

Recorded: adapter load and unload, index create and delete, document add, replace and
delete, and key file reloads. A line holds the time, the key's name (never the key),
the request id, the action, the object, the outcome (`ok` or the error's code) and,
for some actions, a small `detail` (document ids, key names); never document text.

    {"time": "2026-12-06T02:10:00.123Z", "key": "team-a", "request_id": "7f...",
     "action": "document.add", "object": "shared/a-001", "outcome": "ok",
     "replica": "lorag#Ingress#x1"}

`server.audit.path` picks where lines go: `stdout` (the default; in Kubernetes the
pod's log), a file (appended to by every ingress replica; each line is one write of
under 4 KiB, so lines from replicas do not interleave), or null (off). The counter
`lorag_audit_events_total{action, outcome}` is served on /metrics either way.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import datetime, timezone
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from pydantic import Field

from lorag_core.strict import StrictModel

__all__ = ["AuditConfig", "AuditLog"]

_MAX_LINE = 4000


class AuditConfig(StrictModel):
    """Where the audit trail of admin writes goes (`server.audit`)."""

    path: str | None = Field(
        default="stdout",
        description="`stdout`, a file to append JSON lines to (relative to the config "
        "file), or null for no lines (the Prometheus counter stays).")


class AuditLog:
    def __init__(self, path: str | None, registry: CollectorRegistry,
                 replica: str | None = None):
        self.path = path
        self.replica = replica or f"pid{os.getpid()}"
        self.counter = Counter("lorag_audit_events", "Admin writes, by action and outcome.",
                               ("action", "outcome"), registry=registry)
        self._lock = threading.Lock()
        if path not in (None, "stdout"):
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def record(self, action: str, obj: str, outcome: str, key: Any = None,
               request_id: str | None = None, detail: Any = None) -> dict[str, Any]:
        """Write one line; `key` is an ApiKey (its name is written), a name or None."""
        name = getattr(key, "name", key)
        line: dict[str, Any] = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "key": name, "request_id": request_id, "action": action, "object": obj,
            "outcome": outcome, "replica": self.replica}
        if detail is not None:
            line["detail"] = detail
        self.counter.labels(action, outcome).inc()
        self._write(line)
        return line

    def _write(self, line: dict[str, Any]) -> None:
        if self.path is None:
            return
        text = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        if len(text) > _MAX_LINE:  # keep one line one atomic append: trim the detail
            line = {**line, "detail": {"truncated": True}}
            text = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        data = (text + "\n").encode("utf-8")
        with self._lock:
            if self.path == "stdout":
                sys.stdout.write(data.decode("utf-8"))
                sys.stdout.flush()
                return
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    @asynccontextmanager
    async def action(self, action: str, obj: str, key: Any, request_id: str | None
                     ) -> AsyncIterator[dict[str, Any]]:
        """Record `action` on `obj` when the block ends: `ok`, or the error's code (the
        error is raised on). The block may put a `detail` into the yielded dict."""
        extra: dict[str, Any] = {}
        try:
            yield extra
        except BaseException as err:
            code = getattr(err, "code", None) or type(err).__name__
            self.record(action, obj, str(code), key, request_id, extra.get("detail"))
            raise
        self.record(action, obj, "ok", key, request_id, extra.get("detail"))
