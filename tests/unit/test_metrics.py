"""Metrics merge: engine texts join the ingress registry without duplicate families."""

from prometheus_client.parser import text_string_to_metric_families

from serving.metrics import IngressMetrics, merge_prometheus_texts

ENGINE = """# HELP vllm:generation_tokens Generated tokens.
# TYPE vllm:generation_tokens counter
vllm:generation_tokens_total{model_name="base"} 18.0
"""


def test_render_merges_engine_metrics():
    m = IngressMetrics()
    m.finished("base", "chat", 200, 0.0)
    text = m.render([ENGINE, ENGINE]).decode()
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names))
    assert 'lorag_requests_total{endpoint="chat",route="base",status="200"} 1.0' in text
    assert text.count('vllm:generation_tokens_total{model_name="base"} 18.0') == 1


def test_merge_of_nothing_is_empty():
    assert merge_prometheus_texts([]) == b""


def _sse(*bodies):
    import json

    return "".join(f"data: {json.dumps(b)}\n\n" for b in bodies)


USAGE = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}
TOKEN = {"choices": [{"index": 0, "delta": {"content": 'say "usage": 1'}}]}


def test_usage_meter_counts_and_strips_the_forced_usage_event():
    from serving.metrics import UsageMeter

    meter = UsageMeter(strip=True)
    assert meter(_sse(TOKEN)) == _sse(TOKEN)  # an escaped "usage": in content is text
    assert meter(_sse(TOKEN, USAGE) + "data: [DONE]\n\n") == _sse(TOKEN) + "data: [DONE]\n\n"
    assert meter.tokens == 7
    assert meter(_sse(USAGE)) == ""

    kept = UsageMeter(strip=False)  # the client asked for usage: it stays
    assert kept(_sse(USAGE)) == _sse(USAGE) and kept.tokens == 7


def test_usage_meter_reads_the_grounding_verdicts_of_finishing_chunks():
    from serving.metrics import UsageMeter, grounding_verdicts

    meter = UsageMeter()
    text = 'say "grounding": "failed"'  # in content the quotes are escaped: text
    chunks = [_sse({"choices": [{"index": 0, "delta": {"content": text}}]}),
              _sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                                 "grounding": "failed"},
                                {"index": 1, "delta": {}, "finish_reason": "stop",
                                 "grounding": "passed"}]}) + "data: [DONE]\n\n"]
    assert [meter(c) for c in chunks] == chunks  # relayed unchanged
    assert meter.verdicts == ["failed", "passed"]
    assert grounding_verdicts({"choices": [{"message": {}, "grounding": "replaced"},
                                           {"message": {}}]}) == ["replaced"]
    assert grounding_verdicts({"error": {}}) == [] and grounding_verdicts(None) == []


def test_force_usage_only_for_streams_without_it():
    from types import SimpleNamespace

    from serving.metrics import force_usage

    plain = SimpleNamespace(stream=False, stream_options=None)
    assert not force_usage(plain) and plain.stream_options is None
    asked = SimpleNamespace(stream=True, stream_options=SimpleNamespace(include_usage=True))
    assert not force_usage(asked)
    silent = SimpleNamespace(stream=True, stream_options=None)
    assert force_usage(silent) and silent.stream_options.include_usage


def test_ended_counts_per_route_and_adapter():
    from serving.metrics import Generation

    m = IngressMetrics()
    gen = Generation("chat", 0.0, route="tuned", known="tuned", adapter="json-format")
    m.ended(gen, 200, tokens=12)
    m.ended(Generation("chat", 0.0), 404, "model_not_found")
    text = m.render().decode()
    assert 'lorag_output_tokens_total{adapter="json-format",route="tuned"} 12.0' in text
    assert ('lorag_generation_requests_total{adapter="json-format",route="tuned",status="200"}'
            in text)
    assert 'lorag_request_errors_total{adapter="",code="model_not_found",route="-"} 1.0' in text
    assert 'lorag_requests_total{endpoint="chat",route="tuned",status="200"} 1.0' in text
