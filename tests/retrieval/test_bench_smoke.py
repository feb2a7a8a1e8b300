"""The retrieval benchmark runs end to end on tiny sizes (figures come from real runs)."""

import json
import subprocess
import sys


def test_bench_retrieval_smoke(tmp_path):
    r = subprocess.run([sys.executable, "-m", "loadtest.bench_retrieval", "--sizes", "2000",
                        "--seconds", "0.3", "--ingest-docs", "6", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((tmp_path / "bench_retrieval.json").read_text())
    assert {(s["size"], s["type"]) for s in report["search"]} == {(2000, "flat"), (2000, "hnsw")}
    for s in report["search"]:
        assert s["recall_at_10"] > 0.9 and s["batch1"]["qps_ratio"] > 0
    assert report["ingestion"]["chunks"] > 0
    assert (tmp_path / "bench_retrieval.png").stat().st_size > 0
