"""The soak report: failures by status (429 apart), memory growth, the process-tree RSS."""

import argparse
import os
import subprocess
import sys

from loadtest.soak import errors_by_status, report, tree_rss


def test_errors_are_counted_by_status_and_429_is_not_an_error():
    summary = {
        "requests": 200, "failures": 6, "error_rate": 0.03,
        "overall": {"output_tokens_per_s": 12.5, "requests_per_s": 1.1},
        "routes": {"base": {"errors": {"HTTP 429: rate limit": 3, "HTTP 503: busy": 1}},
                   "rag": {"errors": {"stream broken: reset": 1}}},
        "admin": {"errors": {"HTTP 429: rate limit": 1}},
    }
    assert errors_by_status(summary) == {"429": 4, "503": 1, "stream broken": 1}
    opts = argparse.Namespace(users=4, mix="plain=1", duration="30m", warmup="2m",
                              max_tokens="64", max_growth=0.1)
    result = report(summary, [(0.0, 1000 * 2**20), (60.0, 1200 * 2**20),
                              (120.0, 1050 * 2**20)], opts)
    assert result["error_rate_excluding_429"] == 0.01   # 2 of 200
    assert result["rss_start_mb"] == 1000 and result["rss_end_mb"] == 1050
    assert result["rss_peak_mb"] == 1200 and result["rss_growth"] == 0.05


def test_tree_rss_counts_children():
    child = subprocess.Popen([sys.executable, "-c",
                              "b = bytearray(64 * 2**20); import time; time.sleep(30)"])
    try:
        import time
        deadline = time.monotonic() + 20
        while tree_rss(child.pid) < 60 * 2**20:      # its 64 MB are resident
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert tree_rss(os.getpid()) >= tree_rss(child.pid) + 10 * 2**20
    finally:
        child.kill()
        child.wait()
    assert tree_rss(2**22 + 12345) == 0     # no such process
