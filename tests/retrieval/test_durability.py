"""kill -9 during a large ingestion loses no acknowledged document; store and index agree."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from retrieval.registry import IndexRegistry
from retrieval.spec import IndexSpec

WRITER = textwrap.dedent("""
    import sys
    from retrieval.knowledge_base import Document
    from retrieval.registry import IndexRegistry
    from retrieval.spec import IndexSpec
    reg = IndexRegistry(sys.argv[1])
    kb = reg.ensure("kb", IndexSpec(type="hnsw"))
    print("READY", flush=True)
    for i in range(100000):
        docs = [Document(doc_id=f"d{i}-{j}", metadata={"batch": i},
                         text=" ".join(f"Line {k} of document {i}-{j} on topic {i * 7 + j}."
                                       for k in range(40)))
                for j in range(3)]
        kb.add_documents(docs)
        print("ACK", i, flush=True)  # acknowledged only after add_documents returned
""")


def test_kill_9_loses_no_acknowledged_document(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    acked = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        if line.startswith("ACK"):
            acked.append(int(line.split()[1]))
            if len(acked) >= 25:
                break
        assert time.monotonic() < deadline, "writer too slow"
    time.sleep(0.37)  # land the kill somewhere inside the next write
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked += [int(line.split()[1]) for line in proc.stdout if line.startswith("ACK")]

    from retrieval.embedder import Embedder

    kb = IndexRegistry(tmp_path, embedder_factory=Embedder).ensure("kb", IndexSpec(type="hnsw"))
    stats = kb.stats()
    assert stats["vectors"] == stats["chunks"] > 0  # index agrees with the store
    for i in acked:
        for j in range(3):
            doc = kb.store.document(f"d{i}-{j}")
            assert doc is not None and doc["chunks"] > 0, f"acknowledged d{i}-{j} lost"
    # Nothing half-written: every stored document has all of its chunks searchable.
    hits = kb.search("a line of a document", top_k=20, filter={"batch": acked[-1]})
    assert {h["doc_id"] for h in hits} == {f"d{acked[-1]}-{j}" for j in range(3)}
    assert stats["documents"] % 3 == 0  # batches are all-or-nothing
