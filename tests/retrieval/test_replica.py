"""retrieval.storage: replicated, without Ray: a writer service and copies that follow it
through the same calls the deployments make (`replication_*`), in one process."""

import asyncio

import pytest

from retrieval import replica
from retrieval.errors import WriterUnavailableError
from retrieval.replica import Coalesced, claim_slot
from retrieval.service import RetrieverService

SPEC = {"type": "flat", "search": {"mode": "hybrid"}}


class CountingEmbedder:
    """The real embedder, counting document encodes (a copy must never make any)."""

    def __init__(self, inner):
        self.inner, self.encoded = inner, 0
        self.dim = inner.dim

    def encode(self, texts):
        self.encoded += len(texts)
        return self.inner.encode(texts)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class Link:
    """The writer as a copy reaches it; `down` makes every call fail like a dead node."""

    def __init__(self, service):
        self.service, self.down, self.calls = service, False, []

    async def __call__(self, method, *args):
        self.calls.append(method)
        if self.down:
            raise ConnectionError("writer node is down")
        return await getattr(self.service, method)(*args)


def service(path, embedder, writer=None):
    svc = RetrieverService(path, {}, {}, writer=writer, sync_interval_s=0.2)
    svc.registry._embedder_factory = lambda name: embedder
    return svc


def doc(doc_id, text):
    return {"doc_id": doc_id, "text": text}


@pytest.fixture
def run():
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


@pytest.fixture
def cluster(tmp_path, embedder, run):
    """A writer with index `kb` of three documents, and a start(...) for copies."""
    writer = service(tmp_path / "writer", embedder)
    run(writer.start())
    run(writer.create_index("kb", SPEC))
    run(writer.add_documents("kb", [
        doc("tea", "Green tea is steamed, not fermented, and brewed at 80 degrees."),
        doc("ship", "The ferry to the island leaves from pier 9 every hour."),
        doc("bread", "Sourdough needs a starter fed with flour and water.")]))
    link = Link(writer)
    copies = []

    def start(root=tmp_path / "node-b", counting=None):
        copy = service(root, counting or CountingEmbedder(embedder), writer=link)
        run(copy.start(wait_for_writer_s=1))
        copies.append(copy)
        return copy

    yield writer, link, start
    for c in copies:
        c.close()
    run(asyncio.sleep(0.01))  # let the cancelled follow tasks end
    writer.close()


def ids(hits):
    return [h["doc_id"] for h in hits]


def test_a_copy_answers_from_its_own_files_what_the_writer_acknowledged(cluster, run):
    writer, link, start = cluster
    copy = start()
    assert copy.data_dir != writer.data_dir
    assert (copy.data_dir / "indexes" / "kb" / "store.sqlite").exists()
    assert ids(run(copy.search("kb", "when does the ferry leave", 1, None)))[0] == "ship"
    # a write acknowledged by the writer is read at once on the copy: no waiting
    run(writer.add_documents("kb", [doc("kite", "A kite flies best in a steady wind.")]))
    assert ids(run(copy.search("kb", "kite wind", 1, None))) == ["kite"]
    assert run(copy.get_document("kb", "kite"))["content_hash"] == \
        run(writer.get_document("kb", "kite"))["content_hash"]


def test_replacements_and_deletions_reach_the_copy(cluster, run):
    writer, link, start = cluster
    copy = start()
    run(writer.add_documents("kb", [doc("ship", "The ferry now leaves from pier 4.")]))
    run(writer.delete_document("kb", "bread"))
    hits = run(copy.search("kb", "ferry pier", 3, None))
    assert "bread" not in ids(hits)
    assert [h["text"] for h in hits if h["doc_id"] == "ship"] == \
        ["The ferry now leaves from pier 4."]
    assert run(copy.get_document("kb", "bread")) is None
    mine, theirs = run(copy.index_stats("kb")), run(writer.index_stats("kb"))
    for key in ("documents", "chunks", "vectors", "change_seq"):
        assert mine[key] == theirs[key], key
    # hybrid search on the copy: its lexical index came with the rows
    assert ids(run(copy.search("kb", "sourdough starter", 3, None))) != []
    assert run(copy.search("kb", "pier", 1, None))[0]["lexical_rank"] == 1


def test_a_copy_refuses_writes(cluster, run):
    _, _, start = cluster
    copy = start()
    with pytest.raises(WriterUnavailableError):
        run(copy.add_documents("kb", [doc("x", "text")]))
    with pytest.raises(WriterUnavailableError):
        run(copy.delete_index("kb"))


def test_a_restarted_copy_catches_up_from_its_own_copy_without_embedding(cluster, run,
                                                                           embedder):
    writer, link, start = cluster
    copy = start()
    slot = copy.data_dir
    copy.close()  # as when its process ends: its slot is free again
    run(writer.add_documents("kb", [doc(f"n{i}", f"Note {i} is about topic {i}.")
                                    for i in range(30)]))
    counting = CountingEmbedder(embedder)
    again = start(counting=counting)
    assert again.data_dir == slot
    assert again.follower.copies_started == 0  # no new copy: its own files, plus changes
    assert again.follower.changes_pulled == 30
    assert ids(run(again.search("kb", "Note 17 topic 17", 1, None))) == ["n17"]
    assert counting.encoded == 0  # rows came with their embeddings


def test_changes_come_in_slices(cluster, run, monkeypatch):
    writer, link, start = cluster
    copy = start()
    monkeypatch.setattr(replica, "SLICE_CHANGES", 4)
    for i in range(10):
        run(writer.add_documents("kb", [doc(f"s{i}", f"Slice test document number {i}.")]))
    link.calls.clear()
    assert run(copy.index_stats("kb"))["documents"] == 13
    assert link.calls.count("replication_changes") == 3


def test_an_index_deleted_and_created_again_is_copied_again(cluster, run):
    writer, link, start = cluster
    copy = start()
    run(writer.delete_index("kb"))
    assert run(copy.list_indexes()) == []
    run(writer.create_index("kb", SPEC))
    run(writer.add_documents("kb", [doc("new", "Only this document is here now.")]))
    assert ids(run(copy.search("kb", "ferry", 5, None))) == ["new"]
    assert copy.follower.copies_started == 2


def test_without_the_writer_the_copy_answers_as_it_is_then_catches_up(cluster, run):
    writer, link, start = cluster
    copy = start()
    link.down = True
    run(writer.add_documents("kb", [doc("late", "Written while the copy could not see.")]))
    assert "late" not in ids(run(copy.search("kb", "written while", 5, None)))
    assert copy.follower.status()["writer_error"].startswith("ConnectionError")
    link.down = False
    run(asyncio.sleep(0.25))  # retry_after_s
    assert ids(run(copy.search("kb", "written while the copy", 1, None))) == ["late"]
    assert copy.follower.status()["writer_error"] is None


def test_a_new_copy_starts_from_the_writers_faiss_snapshot(cluster, run):
    writer, link, start = cluster
    writer.registry.get("kb").snapshot()
    copy = start()
    files = sorted(p.name for p in (copy.data_dir / "indexes" / "kb").glob("faiss-*.index"))
    assert files == [f"faiss-{writer.registry.get('kb').applied_seq}.index"]


def test_replicas_on_one_node_take_their_own_slots(tmp_path):
    a, held_a = claim_slot(tmp_path)
    b, held_b = claim_slot(tmp_path)
    assert (a.name, b.name) == ("slot-0", "slot-1")
    held_a.close()
    c, held_c = claim_slot(tmp_path)
    assert c.name == "slot-0"
    held_b.close()
    held_c.close()


def test_coalesced_calls_serve_each_caller_with_a_call_that_started_after_it(run):
    started = []

    async def state():
        started.append(len(started))
        await asyncio.sleep(0.05)
        return len(started)

    shared = Coalesced(state)

    async def scenario():
        first = asyncio.ensure_future(shared())
        await asyncio.sleep(0.01)  # the first call is running now
        later = await asyncio.gather(*(shared() for _ in range(10)))
        return await first, later

    first, later = run(scenario())
    assert first == 1
    assert later == [2] * 10  # one more call for all ten, started after they asked
    assert len(started) == 2


def test_an_index_the_copy_cannot_copy_yet_is_unavailable_not_missing(cluster, run):
    writer, link, start = cluster
    copy = start()
    real = link.service.replication_copy

    async def broken(name):
        raise ConnectionError("transfer cut")

    link.service.replication_copy = broken  # before the index exists: the copy's own
    run(writer.create_index("later", SPEC))  # background sync may try it at once
    with pytest.raises(WriterUnavailableError, match="still copying"):
        run(copy.search("later", "anything", 1, None))
    link.service.replication_copy = real
    run(asyncio.sleep(0.25))  # retry_after_s
    assert run(copy.search("later", "anything", 1, None)) == []


def test_the_writer_states_every_index_from_memory_after_its_first_answer(cluster, run,
                                                                          tmp_path, embedder):
    writer, _, _ = cluster
    kb_state = run(writer.replication_state())["kb"]
    writer.close()
    again = service(tmp_path / "writer", embedder)  # a restarted writer: kb is not in its
    run(again.start())                              # config, so nothing opened it yet
    listed = []
    names = again.registry.names
    again.registry.names = lambda: listed.append(1) or names()
    assert run(again.replication_state()) == {"kb": kb_state}
    run(again.create_index("more", SPEC))
    run(again.add_documents("more", [doc("tea", "Oolong is partly oxidised.")]))
    states = run(again.replication_state())
    assert set(states) == {"kb", "more"} and states["more"]["seq"] == 1
    run(again.delete_index("more"))
    assert set(run(again.replication_state())) == {"kb"}
    assert len(listed) == 1  # one look at the folder; every later answer from memory
    again.close()
