"""The locust suite against the real server: a short headless run of every route and
the admin user (adapter hot swap, live re-indexing) with zero failed requests."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ROUTES = {"base", "rag", "tuned", "hybrid"}


def helix_size(http):
    stats = http.get("/v1/indexes/helix").json()
    return stats.get("documents"), stats["vectors"]


@pytest.fixture(scope="module")
def run(server_url, tmp_path_factory, http):
    out = tmp_path_factory.mktemp("loadtest")
    before = helix_size(http)
    cmd = [sys.executable, "-m", "loadtest", "run", "--host", server_url,
           "--users", "5", "--spawn-rate", "5", "--duration", "20",
           "--mix", "plain=1,rag=1,adapter=1,hybrid=1,admin=1",
           # every user's last request is let finish (and counted): on this CPU a mixed
           # batch takes ~20 s to the first token, so each route has an answer
           "--stop-timeout", "120",
           "--prompt-len", "24-48", "--max-tokens", "8", "--max-error-rate", "0",
           "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return proc, out, before


def test_run_has_every_route_and_no_failure(run):
    proc, out, _ = run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failures"] == 0 and summary["error_rate"] == 0, summary
    assert set(summary["routes"]) == ROUTES
    for name, route in summary["routes"].items():
        assert route["requests"] >= 1 and route["failures"] == 0, (name, route)
        assert route["ttft_ms"]["p50"] is not None, (name, route)
    assert summary["overall"]["output_tokens"] > 0
    assert summary["overall"]["itl_ms"]["p50"] is not None
    ops = summary["admin"]["operations"]
    for op in ("POST /v1/adapters", "chat [loaded adapter]", "DELETE /v1/adapters/[name]",
               "POST /v1/indexes/[index]/documents", "search (added doc found)"):
        assert ops.get(op, {}).get("requests", 0) >= 1, (op, ops)
    for name in ("report.html", "locust_stats.csv", "locust_stats_history.csv"):
        assert (out / name).stat().st_size > 0


def test_run_leaves_nothing_behind(run, http):
    adapters = http.get("/v1/adapters").json()["data"]
    assert not [a["id"] for a in adapters
                if a["id"].startswith("loadtest-") and a["state"] == "loaded"]
    assert helix_size(http) == run[2]  # every document the admin user added is gone


def test_metrics_per_route_and_adapter(run, http):
    text = http.get("/metrics").text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}

    def value(name, **labels):
        return samples.get((name, tuple(sorted(labels.items()))), 0)

    assert value("lorag_output_tokens_total", route="tuned", adapter="json-format") > 0
    assert value("lorag_output_tokens_total", route="base", adapter="") > 0
    assert value("lorag_generation_requests_total", route="hybrid", adapter="context-json",
                 status="200") > 0
    assert value("lorag_time_to_first_token_seconds_count", route="rag", adapter="") > 0
    assert ("lorag_requests_queued", (("route", "base"),)) in samples
