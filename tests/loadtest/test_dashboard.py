"""The Grafana dashboard is a valid dashboard whose every query names an exported metric."""

import importlib.util
import json
import re
from pathlib import Path

from serving.metrics import IngressMetrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "lorag-dashboard.json"
METRIC_RE = re.compile(r"\b(lorag_[a-z_]+|vllm:[a-z_]+)")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def lorag_series() -> set[str]:
    """Every series name the ingress exports (families without samples included)."""
    names = set()
    for family in IngressMetrics().registry.collect():
        names.update(family.name + s for s in SUFFIXES[family.type])
    return names


def vllm_families() -> set[str]:
    """Metric names vLLM's engine registers (read from its source, no import)."""
    root = Path(importlib.util.find_spec("vllm").submodule_search_locations[0])
    text = "".join(p.read_text() for p in (root / "v1" / "metrics").glob("*.py"))
    return set(re.findall(r'"(vllm:[a-z_]+)"', text))


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_dashboard_shape():
    d = json.loads(DASHBOARD.read_text())
    assert d["title"] and d["uid"] and isinstance(d["schemaVersion"], int)
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(d)]
    assert len(ids) == len(set(ids))
    graphs = [p for p in panels(d) if p["type"] != "row"]
    assert len(graphs) >= 10
    for p in graphs:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert set(p["gridPos"]) == {"x", "y", "w", "h"}
        assert p["targets"] and len({t["refId"] for t in p["targets"]}) == len(p["targets"])


def test_every_query_names_an_exported_metric():
    d = json.loads(DASHBOARD.read_text())
    ours, engine = lorag_series(), vllm_families()
    seen = set()
    for p in panels(d):
        for target in p.get("targets", []):
            names = METRIC_RE.findall(target["expr"])
            assert names, (p["title"], target["expr"])
            for name in names:
                if name.startswith("lorag_"):
                    assert name in ours, (p["title"], name)
                else:
                    base = re.sub(r"_(total|bucket|count|sum)$", "", name)
                    assert name in engine or base in engine, (p["title"], name)
                seen.add(name)
    # what the issue asks to watch: requests, errors, TTFT, output tokens, retrieval, queue
    for wanted in ("lorag_generation_requests_total", "lorag_request_errors_total",
                   "lorag_time_to_first_token_seconds_bucket", "lorag_output_tokens_total",
                   "lorag_retrieval_duration_seconds_bucket", "lorag_requests_queued",
                   "vllm:num_requests_waiting"):
        assert wanted in seen, wanted
