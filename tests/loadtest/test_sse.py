"""SSE parsing: TTFT, inter-token gaps, usage, errors - as the load test measures them."""

import json

from loadtest.sse import StreamReader


def event(body) -> bytes:
    return f"data: {json.dumps(body)}\n\n".encode()


def chat(content=None, role=None, **extra):
    delta = {k: v for k, v in (("role", role), ("content", content)) if v is not None}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}],
            **extra}


USAGE = {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3,
                                  "total_tokens": 12}}


def test_ttft_gaps_and_usage():
    r = StreamReader(started=10.0)
    r.feed(event(chat(role="assistant", content="", citations=[{"number": 1}])), at=10.5)
    r.feed(event(chat("Hel")), at=10.8)
    r.feed(event(chat("lo")), at=10.9)
    r.feed(event(chat(" you")) + event(USAGE) + b"data: [DONE]\n\n", at=11.2)
    res = r.result()
    assert res.error is None and res.done
    assert abs(res.ttft_s - 0.8) < 1e-9
    assert [round(g, 6) for g in res.gaps_s] == [0.1, 0.3]
    assert res.output_tokens == 3 and res.text == "Hello you"
    assert res.citations == [{"number": 1}]


def test_events_split_across_reads_and_crlf():
    raw = event(chat("a")).replace(b"\n", b"\r\n") + event(chat("b")) + b"data: [DONE]\n\n"
    r = StreamReader(started=0.0)
    for i, byte in enumerate(raw):
        r.feed(bytes([byte]), at=float(i))
    res = r.result()
    assert res.done and res.text == "ab" and res.content_events == 2
    assert res.output_tokens == 2  # no usage: one token per content event


def test_events_in_one_read_share_its_time():
    r = StreamReader(started=0.0)
    r.feed(event(chat("a")) + event(chat("b")) + event(chat("c")), at=1.0)
    r.feed(b"data: [DONE]\n\n", at=2.0)
    res = r.result()
    assert res.ttft_s == 1.0 and res.gaps_s == [0.0, 0.0]


def test_completions_stream():
    r = StreamReader(started=0.0)
    r.feed(event({"choices": [{"index": 0, "text": "x"}]}) + b"data: [DONE]\n\n", at=0.2)
    assert r.result().text == "x"


def test_error_event_and_missing_done_are_errors():
    r = StreamReader(started=0.0)
    r.feed(event(chat("a")) + event({"error": {"message": "boom", "code": 500}}), at=1.0)
    assert "boom" in r.result().error
    r = StreamReader(started=0.0)
    r.feed(event(chat("a")), at=1.0)
    assert r.result().error == "stream ended without data: [DONE]"


def test_comments_and_malformed_events():
    r = StreamReader(started=0.0)
    r.feed(b": keep-alive\n\n" + b"data: {not json\n\n" + b"data: [DONE]\n\n", at=1.0)
    res = r.result()
    assert res.done and res.error.startswith("malformed event")
