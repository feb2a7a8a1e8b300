"""A client that hangs up mid-stream frees its engine slot; the server keeps serving."""

import re
import time

import httpx
import pytest

from tests.support.keys import AUTH

pytestmark = pytest.mark.e2e


def running_requests(http) -> float:
    text = http.get("/metrics").text
    values = re.findall(r"^vllm:num_requests_running\{[^}]*\} ([0-9.e+-]+)$", text, re.M)
    assert values, "engine metrics missing vllm:num_requests_running"
    return sum(float(v) for v in values)


def test_disconnect_aborts_engine_request(server_url, http, client):
    body = {"model": "base", "stream": True, "max_tokens": 1500, "ignore_eos": True,
            "messages": [{"role": "user", "content": "Write a very long story."}]}
    with httpx.Client(base_url=server_url, timeout=60, headers=AUTH) as c:
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            got = [next(lines) for _ in range(6)]
            assert any(line.startswith("data: ") for line in got)
            assert running_requests(http) >= 1
    # 1500 tokens would take minutes on CPU; an aborted request leaves at once.
    deadline = time.monotonic() + 30
    while running_requests(http) > 0:
        assert time.monotonic() < deadline, "engine still generating for a gone client"
        time.sleep(0.5)
    r = client.chat.completions.create(model="base", max_tokens=3, messages=[
        {"role": "user", "content": "hi"}])
    assert r.choices[0].message.content
