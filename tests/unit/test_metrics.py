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
