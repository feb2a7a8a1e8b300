"""The run summary from locust request events, without locust or a server."""

import pytest

from loadtest.summary import Collector, format_table, percentile
from loadtest.sweep import saturation


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def request(c, route, ms, exception=None, name=None):
    c.on_request(request_type="POST", name=name or f"chat {route}", response_time=ms,
                 response_length=100, exception=exception, context={"route": route})


def metric(c, kind, route, value, **context):
    c.on_request(request_type=kind, name=route, response_time=value,
                 response_length=value if kind == "TOKENS" else 0, exception=None,
                 context=context)


def test_percentile():
    assert percentile([], 50) is None
    assert percentile([5], 99) == 5
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


def test_summary_per_route_overall_and_admin():
    clock = Clock()
    c = Collector(clock=clock)
    request(c, "warm", 1)
    c.reset()  # the warm-up is not in the summary
    for ms in (100, 300):
        request(c, "base", ms)
        metric(c, "TTFT", "base", ms / 2)
        metric(c, "ITL", "base", 20, gaps_ms=[10, 30])
        metric(c, "TOKENS", "base", 16)
    request(c, "rag", 500, exception=RuntimeError("HTTP 500: boom\ntrace"))
    request(c, "admin", 50, name="POST /v1/adapters")
    request(c, "admin", 60, name="POST /v1/adapters", exception=RuntimeError("HTTP 400"))
    c.on_request(request_type="GET", name="other", response_time=1, response_length=0)
    clock.t = 10.0
    c.stop()
    request(c, "base", 999)  # users being stopped: ignored
    s = c.summary(users=3)

    assert s["users"] == 3 and s["duration_s"] == 10.0
    assert set(s["routes"]) == {"base", "rag"}
    base = s["routes"]["base"]
    assert base["requests"] == 2 and base["requests_per_s"] == 0.2
    assert base["output_tokens"] == 32 and base["output_tokens_per_s"] == 3.2
    assert base["ttft_ms"]["p50"] == 100 and base["itl_ms"]["p50"] == 20
    assert s["routes"]["rag"]["errors"] == {"HTTP 500: boom": 1}
    assert s["overall"]["requests"] == 3 and s["overall"]["error_rate"] == 0.3333
    assert s["admin"]["operations"] == {"POST /v1/adapters": {"requests": 2, "failures": 1}}
    assert s["requests"] == 5 and s["failures"] == 2 and s["error_rate"] == 0.4
    table = format_table(s)
    assert "base" in table and "overall" in table and "admin: 2 requests, 1 failed" in table


def test_saturation():
    steps = [{"concurrency": c, "output_tokens_per_s": t}
             for c, t in ((1, 10), (2, 19), (4, 30), (8, 31))]
    assert saturation(steps) == 4
    assert saturation(steps[:3]) is None
