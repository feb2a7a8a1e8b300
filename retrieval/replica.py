"""Retriever replicas without a shared filesystem: one writer, and copies that follow it.

With `retrieval.storage: replicated` (serving.app), one writer replica owns every
index's SQLite store on the durable volume and takes every write; it acknowledges a
write once the store's transaction has committed (WAL, synchronous=FULL), as in the
shared mode. Each retriever replica keeps its own copy of every index in a local
directory and answers reads from it. A copy is the writer's store, row for row, with the
writer's chunk ids and change seqs, so the copy's own change log drives its FAISS index
exactly as a shared store would (`KnowledgeBase.sync`).

How a copy follows (`Follower`):
- before each read it asks the writer for every index's `{uid, seq}` (one small Ray
  call; concurrent reads share one), and pulls what it lacks: the changes after its
  own seq, each with the current rows and embeddings of the documents it touches
  (`DocumentStore.log_slice`), so nothing is embedded again. A client that saw its
  write acknowledged therefore reads it on any replica;
- a background task does the same every `sync_interval_s`, so an idle replica is
  never more than that behind;
- a new copy, or one of an index deleted and created again (another uid), starts from
  the writer's files: an online backup of its store plus its newest FAISS snapshot;
- a replica that restarts on the same node opens the copy it left (its FAISS snapshot
  plus its own change log) and pulls only the changes after it.

When the writer cannot be reached (its node is down), reads are answered from the copy
as it is, and the writer is asked again after `sync_interval_s`; writes fail with 503
until the writer is back, and nothing it acknowledged is lost (it is on its volume).

Why this design: Ray already gives every replica a handle to the writer, and the store
already keeps the change log that replicas of the shared mode follow, so a copy needs
no second system (no object store, no consensus): the writer's SQLite file stays the
one durable place, and a copy is a cache that can always be rebuilt from it.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from retrieval.errors import IndexNotFoundError
from retrieval.registry import IndexRegistry

__all__ = ["SLICE_CHANGES", "Writer", "Coalesced", "Follower", "claim_slot"]

logger = logging.getLogger(__name__)

SLICE_CHANGES = 200  # changes per pull: bounds one reply (a change is one document)

Writer = Callable[..., Awaitable[Any]]  # writer(method, *args) -> the method's value


def claim_slot(root: Path) -> tuple[Path, IO[str]]:
    """The first folder `root/slot-N` no live process holds, and the open file whose lock
    holds it for this process (keep it open). Replicas on one node get their own copies;
    one that restarts takes a free slot, often its own, and catches up from the copy
    there. The lock goes with the process, however it ends."""
    root.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        slot = root / f"slot-{n}"
        slot.mkdir(exist_ok=True)
        held = open(slot / ".lock", "a")  # noqa: SIM115 - kept open: it is the claim
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.close()
            n += 1
            continue
        return slot, held


class Coalesced:
    """Calls of `fn` shared by concurrent callers: each caller gets the result of a call
    that started after it asked (so it sees everything acknowledged before it asked), and
    at most one call runs at a time."""

    def __init__(self, fn: Callable[[], Awaitable[Any]]):
        self._fn = fn
        self._next: asyncio.Future | None = None
        self._running: asyncio.Future | None = None
        self._tasks: set[asyncio.Task] = set()  # the loop keeps only weak references

    async def __call__(self) -> Any:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._next.add_done_callback(_retrieve)
            task = asyncio.ensure_future(self._run(self._next))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(self._next)

    async def _run(self, future: asyncio.Future) -> None:
        while self._running is not None:
            await asyncio.wait([self._running])
        self._next = None  # callers from now on need a call that starts after them
        self._running = future
        try:
            future.set_result(await self._fn())
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as err:  # noqa: BLE001 - handed to every waiting caller
            future.set_exception(err)
        finally:
            self._running = None


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # every caller may have gone: not "never retrieved"


class Follower:
    """Keeps `registry` (a local directory) a copy of the writer's indexes."""

    def __init__(self, registry: IndexRegistry, writer: Writer, *, timeout_s: float = 2.0,
                 retry_after_s: float = 1.0):
        self.registry = registry
        self.writer = writer
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._state = Coalesced(self._writer_state)
        self._locks: dict[str, asyncio.Lock] = {}
        self._held: dict[str, tuple[str, int]] = {}  # index -> (uid, seq) the copy holds
        self._skip_until = 0.0
        self.remote_names: set[str] = set()  # the writer's indexes, as it last said
        self.copies_started = 0       # indexes copied whole from the writer
        self.changes_pulled = 0       # changes applied from the writer's log
        self.last_contact: float | None = None
        self.writer_error: str | None = None
        self.start_s: float | None = None  # from start to the first answer (writer found)
        self.catch_up_s: float | None = None  # of it: the round that reached the writer
        self.applied: dict[str, dict[str, float]] = {}  # index -> last pull: seq, wall time
        self.last_pull: dict[str, Any] | None = None  # the last catch-up: changes, seconds

    async def _writer_state(self) -> dict[str, dict[str, Any]]:
        return await asyncio.wait_for(self.writer("replication_state"), self.timeout_s)

    async def fresh(self, name: str | None = None) -> bool:
        """Bring index `name` (every index when None) up to what the writer has
        acknowledged so far. False: the writer did not answer; the copy answers as it is."""
        if time.monotonic() < self._skip_until:
            return False
        try:
            state = await self._state()
        except Exception as err:  # noqa: BLE001 - unreachable writer: serve the copy
            self._unreachable(err)
            return False
        self.last_contact, self.writer_error = time.time(), None
        self.remote_names = set(state)
        names = {name} if name is not None else \
            set(state) | set(await asyncio.to_thread(self.registry.names))
        for index in sorted(names):
            try:
                await self._follow(index, state.get(index))
            except Exception as err:  # noqa: BLE001
                self._unreachable(err)
                return False
        return True

    def _unreachable(self, err: BaseException) -> None:
        if self.writer_error is None:
            logger.warning("retrieval writer unreachable (%s: %s): answering from the local "
                           "copy", type(err).__name__, err)
        self.writer_error = f"{type(err).__name__}: {err}"
        self._skip_until = time.monotonic() + self.retry_after_s

    def holds(self, name: str | None) -> bool:
        """Whether the copy holds index `name` (any index, for None)."""
        return bool(self._held) if name is None else name in self._held

    def _holds(self, name: str, remote: dict[str, Any] | None) -> bool:
        held = self._held.get(name)
        return remote is not None and held is not None and held[0] == remote["uid"] \
            and held[1] >= remote["seq"]

    async def _follow(self, name: str, remote: dict[str, Any] | None) -> None:
        if self._holds(name, remote):  # the usual case of a read: no thread, no lock
            return
        async with self._locks.setdefault(name, asyncio.Lock()):
            if self._holds(name, remote):  # a read before us pulled it
                return
            self._held.pop(name, None)
            if remote is None:  # deleted on the writer
                if name in await asyncio.to_thread(self.registry.names):
                    await asyncio.to_thread(self._drop, name)
                return
            kb = await asyncio.to_thread(self._open, name, remote["uid"])
            if kb is None:
                kb = await self._copy(name)
            seq = await asyncio.to_thread(kb.copied_seq)
            t0, before = time.perf_counter(), self.changes_pulled
            await self._pull(kb, name, remote, seq)
            if self.changes_pulled > before:
                self.last_pull = {"index": name, "changes": self.changes_pulled - before,
                                  "s": round(time.perf_counter() - t0, 3)}

    async def _pull(self, kb: Any, name: str, remote: dict[str, Any], seq: int) -> None:
        """Apply the writer's changes after `seq` to the copy `kb`, slice by slice."""
        self._held[name] = (remote["uid"], seq)
        while seq < remote["seq"]:
            part = await asyncio.wait_for(self.writer(
                "replication_changes", name, remote["uid"], seq, SLICE_CHANGES),
                self.timeout_s * 5)
            if part is None or not part["changes"]:  # deleted or created again since
                return                                 # the state (next time), or done
            seq = await asyncio.to_thread(kb.apply_slice, part)
            self._held[name] = (remote["uid"], seq)
            self.applied[name] = {"seq": seq, "at": time.time()}
            self.changes_pulled += len(part["changes"])

    def _open(self, name: str, uid: str) -> Any | None:
        """The local copy of `name` if it is one of index `uid`, else None."""
        try:
            kb = self.registry.get(name)
        except IndexNotFoundError:
            return None
        return kb if self.registry.uid(name) == uid else None

    def _drop(self, name: str) -> None:
        try:
            self.registry.delete(name)
        except IndexNotFoundError:
            pass

    async def _copy(self, name: str) -> Any:
        t0 = time.perf_counter()
        files = await asyncio.wait_for(self.writer("replication_copy", name),
                                       max(60.0, self.timeout_s * 30))
        kb = await asyncio.to_thread(self.registry.install, name, files)
        self.copies_started += 1
        logger.info("index %s: copied from the writer (%d bytes) in %.1f s", name,
                    len(files["store"]), time.perf_counter() - t0)
        return kb

    async def run(self, interval_s: float) -> None:
        """Follow the writer every `interval_s` for ever (a replica's background task)."""
        while True:
            try:
                await self.fresh()
            except Exception:  # noqa: BLE001 - the next round tries again
                logger.exception("retrieval copy: sync round failed")
            await asyncio.sleep(interval_s)

    def status(self) -> dict[str, Any]:
        return {"copies_started": self.copies_started, "changes_pulled": self.changes_pulled,
                "start_s": self.start_s, "catch_up_s": self.catch_up_s,
                "last_contact": self.last_contact,
                "writer_error": self.writer_error, "applied": dict(self.applied),
                "last_pull": self.last_pull}
