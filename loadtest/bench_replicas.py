"""Retrieval replicas across two Ray nodes (`retrieval.storage: replicated`): search
throughput and latency with 1, 2 and 4 replicas, and how fast copies catch up.

    python -m loadtest.bench_replicas [--chunks 100000] [--replicas 1,2,4] [--seconds 30]
                                      [--concurrency 8] [--writes 1000] [--out ...]
    python -m loadtest.bench_replicas --ryw-pairs 6 [--seconds 15]

Two nodes on this machine (`ray start --head` and `ray start --address`, each with its
own LORAG_DATA_DIR, as tests/serve/test_multinode.py starts them). The writer's index
(`bench`: the helix sample documents, embedded for real, plus filler chunks with random
unit vectors up to `--chunks`, as loadtest.bench_rag_overhead builds it) is on node a;
the retriever replicas are spread over both nodes (`max_replicas_per_node`).

- Search: for each replica count, `--concurrency` callers send the helix questions to
  the Retriever deployment through its Serve handle (what the ingress does), top_k 5,
  for `--seconds`; searches/s and p50/p99 latency, and how many each node answered.
  Each search first asks the writer for its seq (read-your-writes), as in production.
  The baseline is `storage: shared` with one replica on one node, the same index.
- Copy: how long a new replica took to copy the index from the writer (first run).
- Catch-up, live: `--writes` single-document writes to the writer, then the time from
  the last acknowledgement until every replica holds it without being asked (the idle
  replicas' background sync), and the lag a reader sees: none, by construction.
- Catch-up, return: node b killed (SIGKILL), `--writes` more writes, node b started
  again: the time from `ray start` until its replica answers with all of them, and the
  part of it the replica spent pulling the changes (its `start_s`).
- `--ryw-pairs N` instead measures only what the read-your-writes check costs: one
  replicated replica on node b, redeployed with the check on and off in N pairs (ABBA
  order, so drift cancels), `--seconds` of load each; the paired difference in searches/s
  with a 95% bootstrap interval of its mean. Writes docs/results/bench_replicas_ryw.json.

On the 2-core VM all nodes share two cores: more replicas add no CPU, so the figures
show what a replica costs and that copies stay correct, not how throughput scales on
real hosts. Writes JSON (default docs/results/bench_replicas.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from loadtest.bench_rag_overhead import SAMPLE, build_index
from serving.config import parse_config

INDEX = "bench"
APP = "bench-replicas"


def config(storage: str, replicas: int, read_your_writes: bool = True) -> dict:
    retrieval = {"storage": storage, "query_encoder": "onnx-int8",
                 "read_your_writes": read_your_writes,
                 "deployment": {"num_replicas": replicas, "num_cpus": 0.1,
                                "max_replicas_per_node": math.ceil(replicas / 2)},
                 "writer": {"num_replicas": 1, "num_cpus": 0.1,
                            "resources": {"node_a": 0.01}}}
    if storage == "shared":  # its replicas share node a's data folder
        retrieval["deployment"]["resources"] = {"node_a": 0.01}
    return {"server": {"app_name": APP, "auth": {"enabled": False}},
            "models": {"smol": {"source": "builtin:smollm2-135m-instruct"}},
            "retrieval": retrieval, "routes": [{"name": "base", "model": "smol"}]}


def deploy(storage: str, replicas: int, read_your_writes: bool = True):
    """The retriever deployment (and its writer) alone: no ingress, no LLM."""
    from ray import serve

    from serving.app import retrieval_deployments

    retriever, _ = retrieval_deployments(parse_config(config(storage, replicas,
                                                             read_your_writes)))
    serve.run(retriever, name=APP, route_prefix=None)
    return serve.get_deployment_handle("Retriever", APP)


async def search_load(handle, questions: list[str], seconds: float, concurrency: int,
                      node_of: dict[str, str]) -> dict:
    from serving.envelope import unwrap

    search = handle.options(_by_reference=False)
    for q in questions[:concurrency]:  # warm-up: every replica's encoder and caches
        unwrap(await search.call.remote("search", INDEX, q, 5, None, None, None))
    latencies, nodes, stop = [], {}, time.perf_counter() + seconds

    async def caller(offset: int):
        i = offset
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            reply = await search.call.remote("search", INDEX, questions[i % len(questions)],
                                             5, None, None, None)
            latencies.append(time.perf_counter() - t0)
            unwrap(reply)
            node = node_of.get(reply.get("replica", {}).get("node_id"), "node_a")
            nodes[node] = nodes.get(node, 0) + 1
            i += concurrency

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(k) for k in range(concurrency)))
    wall = time.perf_counter() - t0
    latencies.sort()
    return {"searches": len(latencies), "searches_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
            "answered_by_node": nodes}


async def replica_seqs(handle, want: int, since: float, replicas: int,
                       timeout_s: float = 300) -> dict[str, float]:
    """replica_id -> seconds from `since` (a wall time) until it applied change `want`,
    by its own clock record (`replica.applied`): polls only find out, so they do not
    time it. Concurrent polls, so that the router reaches every replica."""
    t0, held = time.perf_counter(), {}
    state = handle.options(_by_reference=False)

    async def poll():
        while len(held) < replicas and time.perf_counter() - t0 < timeout_s:
            try:
                replica = (await state.call.remote("replication_state"))["replica"]
            except Exception:  # noqa: BLE001 - a replica of the killed node, not yet dropped
                await asyncio.sleep(0.1)
                continue
            applied = replica.get("applied", {}).get(INDEX)
            if applied and applied["seq"] >= want and replica["replica_id"] not in held:
                held[replica["replica_id"]] = round(applied["at"] - since, 3)
            await asyncio.sleep(0.02)

    await asyncio.gather(*(poll() for _ in range(4)))
    if len(held) < replicas:
        raise TimeoutError(f"replicas did not reach change {want}: {held}")
    return held


async def write(writer, n: int, start: int) -> int:
    """`n` single-document writes; the writer's seq after the last acknowledgement."""
    from serving.envelope import unwrap

    w = writer.options(_by_reference=False)
    for i in range(start, start + n):
        unwrap(await w.call.remote("add_documents", INDEX, [{
            "doc_id": f"new-{i}", "text": f"Update {i}: the co-op board approved item {i}."}],
            None))
    return unwrap(await w.call.remote("replication_state"))[INDEX]["seq"]


def node_names() -> dict[str, str]:
    import ray

    return {n["NodeID"]: name for n in ray.nodes() if n["Alive"]
            for name in ("node_a", "node_b") if name in n["Resources"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--replicas", default="1,2,4")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--writes", type=int, default=1000)
    p.add_argument("--ryw-pairs", type=int, default=0,
                   help="only compare read-your-writes on and off, in this many pairs")
    p.add_argument("--out", type=Path, default=None)
    opts = p.parse_args(argv)
    if opts.out is None:
        opts.out = Path("docs/results/bench_replicas_ryw.json" if opts.ryw_pairs
                        else "docs/results/bench_replicas.json")
    import ray
    from ray import serve

    from retrieval.spec import IndexSpec
    from loadtest.ray_nodes import RayNodes

    questions = [json.loads(line)["question"]
                 for line in (SAMPLE / "questions.jsonl").read_text().splitlines() if line]
    work = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    print(f"building the {opts.chunks}-chunk index in {work / 'a'}", flush=True)
    stats = build_index(work / "a", IndexSpec(type="flat"), opts.chunks)
    report = {"chunks": stats["chunks"], "concurrency": opts.concurrency,
              "seconds": opts.seconds, "machine": "2-core x86 VM, both nodes on it",
              "search": []}
    nodes = RayNodes(num_cpus=8)
    try:
        nodes.start("node_a", {"LORAG_DATA_DIR": str(work / "a")})
        nodes.start("node_b", {"LORAG_DATA_DIR": str(work / "b")})
        ray.init(address=nodes.address, log_to_driver=False)
        serve.start(http_options={"host": "127.0.0.1", "port": 0, "location": "HeadOnly"})
        if opts.ryw_pairs:
            report.pop("search")
            report["read_your_writes"] = ryw_pairs(questions, opts)
            return _write(report, opts.out)
        runs = [("shared", 1, True)] + [("replicated", int(n), True)
                                         for n in opts.replicas.split(",")]
        runs.insert(2, ("replicated", 1, False))
        for storage, n, ryw in runs:
            node_of = node_names()
            t0 = time.perf_counter()
            handle = deploy(storage, n, ryw)
            ready = round(time.perf_counter() - t0, 1)
            result = asyncio.run(search_load(handle, questions, opts.seconds,
                                             opts.concurrency, node_of))
            row = {"storage": storage, "replicas": n, "read_your_writes": ryw,
                   "ready_s": ready, **result}
            if storage == "replicated":  # how each replica started: copied, or caught up
                row["replicas_started"] = [
                    {k: s.get(k) for k in ("copies_started", "changes_pulled", "catch_up_s",
                                           "last_pull")}
                    for s in asyncio.run(_statuses(handle, n)).values()]
            print(json.dumps(row), flush=True)
            report["search"].append(row)
            serve.delete(APP)  # each run from scratch; the copies stay in their slots
        handle = deploy("replicated", 2)
        report["catch_up"] = catch_up(handle, nodes, opts.writes, node_names())
        serve.delete(APP)
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            nodes.stop()
    return _write(report, opts.out)


def _write(report: dict, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def ryw_pairs(questions: list[str], opts) -> dict:
    """One replica, the check on and off in turn (ABBA): searches/s of each pair."""
    import numpy as np
    from ray import serve

    from loadtest.bench_rag_overhead import median_ci95

    rows = []
    for i in range(2 * opts.ryw_pairs):
        ryw = (i % 4) in (0, 3)
        handle = deploy("replicated", 1, ryw)
        result = asyncio.run(search_load(handle, questions, opts.seconds, opts.concurrency,
                                         node_names()))
        rows.append({"pair": i // 2, "read_your_writes": ryw, **result})
        print(json.dumps(rows[-1]), flush=True)
        serve.delete(APP)
    on = [r["searches_per_s"] for r in rows if r["read_your_writes"]]
    off = [r["searches_per_s"] for r in rows if not r["read_your_writes"]]
    diffs = [a - b for a, b in zip(on, off, strict=True)]
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    summary = {"pairs": len(diffs), "mean_on": round(statistics.mean(on), 1),
               "mean_off": round(statistics.mean(off), 1),
               "mean_difference": round(statistics.mean(diffs), 1),
               "difference_ci95": [round(x, 1)
                                   for x in median_ci95(diffs, statistic=np.mean)],
               "pairs_on_faster": sum(d > 0 for d in diffs),
               "median_ratio_on_off": round(statistics.median(ratios), 3),
               "median_ratio_ci95": [round(x, 3) for x in median_ci95(ratios)]}
    print(json.dumps(summary), flush=True)
    return {"runs": rows, **summary}


def catch_up(handle, nodes, writes: int, node_of: dict[str, str]) -> dict:
    from ray import serve

    writer = serve.get_deployment_handle("RetrieverWriter", APP)
    t0 = time.perf_counter()
    seq = asyncio.run(write(writer, writes, 0))
    acked = time.time()
    write_s = time.perf_counter() - t0
    live = asyncio.run(replica_seqs(handle, seq, acked, 2))
    out = {"writes": writes, "write_s": round(write_s, 1),
           "live_lag_s": {"max": max(live.values()), "per_replica": live}}
    print(json.dumps(out), flush=True)
    nodes.kill("node_b")
    time.sleep(5)  # the node is noticed dead (health checks every 1 s, 3 misses)
    seq = asyncio.run(write(writer, writes, writes))
    t0, started = time.perf_counter(), time.time()
    nodes.restart("node_b")
    back = asyncio.run(replica_seqs(handle, seq, started, 2, timeout_s=600))
    statuses = asyncio.run(_statuses(handle, 2))
    returned = [s for s in statuses.values() if node_of.get(s["node_id"]) is None]
    out["return"] = {"writes_while_down": writes,
                     "node_start_to_caught_up_s": max(back.values()),
                     "replica": returned[0] if returned else None}
    print(json.dumps(out["return"]), flush=True)
    return out


async def _statuses(handle, replicas: int) -> dict[str, dict]:
    """replica_id -> its `replica` record (node, copies_started, start_s, ...)."""
    out = {}
    state = handle.options(_by_reference=False)
    for _ in range(200):
        reply = await state.call.remote("replication_state")
        out[reply["replica"]["replica_id"]] = reply["replica"]
        if len(out) >= replicas:
            break
    return out


if __name__ == "__main__":
    sys.exit(main())
