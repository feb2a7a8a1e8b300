"""Scoring rules and aggregates, with known numbers."""

from types import SimpleNamespace

import pytest

from evaluation import scoring
from evaluation.data import Question
from evaluation.metrics import retrieval_metrics, route_metrics, score_record


@pytest.mark.parametrize("text, expected", [
    ("  The ANSWER,  is: 42! ", "the answer is 42"),
    ("4,200 people", "4200 people"),
    ("1,234,567", "1234567"),
    ("91%", "91 percent"),
    ("91 %", "91 percent"),
    ("HVC-CO-0719", "hvc co 0719"),
    ("I don’t know.", "i dont know"),
    ("€150", "150"),
    ("3.5 km", "3 5 km"),
    ("snake_case", "snake case"),
])
def test_normalize(text, expected):
    assert scoring.normalize(text) == expected


@pytest.mark.parametrize("answer, gold, aliases, ok", [
    ("Founded on 14 March 2011 [1].", "14 March 2011", [], True),
    ("It costs 4200 euros", "4,200", [], True),
    ("It costs 4,200 euros", "4200", [], True),
    ("The rate is 91 percent", "91%", [], True),
    ("The rate is 91%.", "91 %", [], True),
    ("It costs 1500", "150", [], False),            # word boundaries, not substrings
    ("Ask Marwick.", "Ilse Marwick", ["Marwick"], True),  # an alias
    ("Ilse", "Ilse Marwick", ["Marwick"], False),
    ("code hvc-co-0719", "HVC-CO-0719", [], True),
    ("", "x", [], False),
])
def test_is_correct(answer, gold, aliases, ok):
    assert scoring.is_correct(answer, gold, aliases) is ok


@pytest.mark.parametrize("answer, ok", [
    ("I don't know.", True), ("I do not know the answer", True),
    ("That is not in the sources.", True), ("I cannot find it.", True),
    ("There is no information about this.", True), ("The answer is 42.", False),
    ("I know: 42", False),
])
def test_says_dont_know(answer, ok):
    assert scoring.says_dont_know(answer) is ok


def test_the_routes_no_context_answer_counts_as_a_refusal():
    phrases = scoring.refusal_phrases('{"answer": "Nothing found here.", "confidence": "low"}')
    assert phrases == ["Nothing found here."]
    assert scoring.says_dont_know("Nothing found here.", phrases)
    assert not scoring.says_dont_know("Nothing found here.")
    assert scoring.refusal_phrases(None) == []


@pytest.mark.parametrize("text, ok", [
    ('{"answer": "Paris", "confidence": "high"}', True),
    (' \n{"answer": "", "confidence": "low"}\n', True),
    ('{"answer": "Paris", "confidence": "sure"}', False),
    ('{"answer": 3, "confidence": "high"}', False),
    ('{"answer": "Paris"}', False),
    ('{"answer": "Paris", "confidence": "high", "x": 1}', False),
    ('```json\n{"answer": "Paris", "confidence": "high"}\n```', False),
    ('["Paris"]', False), ("Paris", False), ("", False),
])
def test_parse_format(text, ok):
    assert (scoring.parse_format(text) is not None) is ok


def test_json_answers_are_scored_on_their_answer_field():
    assert scoring.scored_text('{"answer": "42 [1]", "confidence": "high"}') == "42 [1]"
    assert scoring.scored_text('{"answer": "42"') == '{"answer": "42"'


def test_cited_doc_ids_follow_the_markers():
    sources = ["alpha", "beta", "alpha"]
    assert scoring.cited_doc_ids("x [2] y [3] [2] [9]", sources) == ["beta", "alpha"]
    assert scoring.cited_doc_ids("no marker", sources) == []
    assert scoring.cited_doc_ids("x [1]", None) is None


def test_recall_precision_and_percentiles():
    assert scoring.recall(["a", "b"], ["b", "c"]) == 0.5
    assert scoring.recall(["a"], []) == 0.0
    precision, n = scoring.citation_precision([["a", "c"], None, ["b"]], [["a"], ["x"], ["b"]])
    assert (precision, n) == (2 / 3, 3)
    assert scoring.citation_precision([[], None], [["a"], ["b"]]) == (None, 0)
    assert scoring.percentile([4, 1, 3, 2], 50) == 2.5
    assert scoring.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)
    assert scoring.percentile([], 50) is None
    assert scoring.mean([1, None, 3]) == 2 and scoring.mean([]) is None


def q(id, kind, answer="", doc_ids=(), aliases=()):
    return Question(id=id, question=f"question {id}?", answer=answer, aliases=list(aliases),
                    doc_ids=list(doc_ids), kind=kind)


def raw(id, kind, answer, sources=None, tokens=5, latency=1.0, error=None):
    return {"route": "rag", "id": id, "kind": kind, "answer": answer,
            "retrieved_doc_ids": sources, "latency_s": latency, "completion_tokens": tokens,
            "error": error}


def test_route_metrics_with_known_numbers():
    items = {"s1": q("s1", "single", "1999", ["alpha"]),
             "s2": q("s2", "single", "Ada", ["beta"]),
             "m1": q("m1", "multi", "42", ["alpha", "beta"]),
             "u1": q("u1", "unanswerable"), "u2": q("u2", "unanswerable")}
    answers = [
        raw("s1", "single", "It was 1999 [1].", ["alpha", "gamma"], latency=1.0),
        raw("s2", "single", "It was Bob [2].", ["beta", "gamma"], latency=2.0),
        raw("m1", "multi", '{"answer": "42 [1][2]", "confidence": "high"}',
            ["alpha", "beta"], latency=3.0),
        raw("u1", "unanswerable", "Nothing relevant.", [], tokens=0, latency=4.0),  # no-context
        raw("u2", "unanswerable", None, error="500: boom"),
    ]
    scored = [score_record(a, items[a["id"]], []) for a in answers]
    assert [r["correct"] for r in scored] == [True, False, True, True, False]
    assert [r["cause"] for r in scored] == [None, "answered_wrong", None, None, "error"]
    assert scored[2]["format_valid"] and scored[2]["cited_doc_ids"] == ["alpha", "beta"]
    searches = [{"id": "s1", "doc_ids": ["alpha"], "retrieved": ["alpha"], "error": None},
                {"id": "s2", "doc_ids": ["beta"], "retrieved": ["alpha"], "error": None},
                {"id": "m1", "doc_ids": ["alpha", "beta"], "retrieved": ["beta"], "error": None}]
    retrieval = retrieval_metrics(searches, 5)
    assert retrieval["recall"] == pytest.approx(0.5) and retrieval["all_found"] == 1 / 3
    formats = [score_record(raw("f1", "format", '{"answer": "Paris", "confidence": "low"}'),
                            SimpleNamespace(kind="format", answerable=True, answer="Paris",
                                            aliases=[], doc_ids=["x"], question="?"), []),
               score_record(raw("f2", "format", "Paris"),
                            SimpleNamespace(kind="format", answerable=True, answer="Paris",
                                            aliases=[], doc_ids=["x"], question="?"), [])]
    m = route_metrics(SimpleNamespace(retrieval={"index": "kb"}), scored, formats, retrieval)
    assert m["accuracy"] == {"overall": 0.6, "single": 0.5, "multi": 1.0, "unanswerable": 0.5}
    assert m["counts"] == {"single": 2, "multi": 1, "unanswerable": 2}
    assert m["citation_precision"] == 0.75  # cited alpha, gamma, alpha, beta
    assert m["cited_sources"] == 4
    assert m["context_recall"] == 1.0
    assert m["recall_at_k"] == 0.5 and m["recall_all_at_k"] == 0.3333
    assert m["format_validity"] == 0.5 and m["format_accuracy"] == 0.5
    # latencies 1, 2, 3, 4 s and 1, 1 s for the format prompts; the failed one has none
    assert (m["latency_p50_s"], m["latency_p95_s"], m["errors"]) == (1.5, 3.75, 1)
    assert m["tokens_per_answer"] == 4.2
    assert m["wrong_causes"] == {"wrong": 3, "error": 1, "format": 1, "retrieval": 0,
                                 "grounding": 0, "refused": 0, "answered_wrong": 1,
                                 "answered_unanswerable": 0}
    plain = route_metrics(SimpleNamespace(retrieval=None), scored, [], retrieval)
    assert plain["recall_at_k"] is None and plain["citation_precision"] is None
    assert m["grounding_replaced"] == 0 and plain["grounding_replaced"] is None
    # the server says per answer whether its grounding check replaced it
    checked = [{**r, "grounding": g} for r, g in
               zip(scored, ["passed", "replaced", "passed", "replaced", None])]
    m = route_metrics(SimpleNamespace(retrieval={"index": "kb"}), checked,
                      [{**formats[0], "grounding": "replaced"}, formats[1]], retrieval)
    assert (m["grounding_replaced"], m["grounding_replaced_answerable"]) == (3, 2)
    assert plain["format_validity"] is None and plain["context_recall"] is None


def test_wrong_answers_get_the_first_cause_that_applies():
    single = q("s", "single", "1999", ["alpha", "beta"])
    fmt = SimpleNamespace(kind="format", answerable=True, answer="Paris", aliases=[],
                          doc_ids=["alpha"], question="?")
    idk = '{"answer": "I don\'t know.", "confidence": "low"}'

    def cause(item, answer, sources, grounding=None, tokens=5):
        record = {**raw("x", item.kind, answer, sources, tokens=tokens), "grounding": grounding}
        return score_record(record, item, [idk])["cause"]

    # the sources lacked a gold document: retrieval, whatever the model then did
    assert cause(single, "I don't know.", ["alpha"]) == "retrieval"
    assert cause(single, "It was 2001 [1].", ["alpha", "gamma"]) == "retrieval"
    assert cause(single, "Nothing.", [], tokens=0) == "retrieval"  # no usable source
    # every gold document was there: the reader missed it
    assert cause(single, "I don't know.", ["alpha", "beta"], grounding="replaced") == "grounding"
    assert cause(single, idk, ["beta", "alpha"]) == "refused"
    assert cause(single, "I cannot find that in the sources.", ["alpha", "beta"]) == "refused"
    assert cause(single, "It was 2001 [1].", ["alpha", "beta"]) == "answered_wrong"
    assert cause(single, "It was 1999 [1].", ["alpha", "beta"]) is None
    # no retrieval (base, tuned): refused or answered wrong
    assert cause(single, "It was 2001.", None) == "answered_wrong"
    # format prompts: the shape first, then as questions
    assert cause(fmt, "Paris", ["alpha"]) == "format"
    assert cause(fmt, '{"answer": "Rome", "confidence": "high"}', ["beta"]) == "retrieval"
    assert cause(fmt, '{"answer": "Rome", "confidence": "high"}', ["alpha"]) == "answered_wrong"
    assert cause(q("u", "unanswerable"), "It was 1999 [1].", ["alpha"]) == "answered_unanswerable"
    assert cause(q("u", "unanswerable"), idk, ["alpha"]) is None

    records = [score_record(raw("a", "single", "It was 2001.", None), single, []),
               score_record(raw("b", "single", "It was 1999.", None), single, [])]
    causes = route_metrics(SimpleNamespace(retrieval=None), records, [],
                           retrieval_metrics([], 5))["wrong_causes"]
    assert causes["retrieval"] is None and causes["answered_wrong"] == 1
    assert causes["wrong"] == 1
