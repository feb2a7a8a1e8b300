"""Multi-hop retrieval (`retrieval.hops`): the follow-up query built from what the first
sources name, the merge of a further hop's chunks, the synchronous loop, the settings
and the ingress path (fake handles)."""

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from serving import multihop as mh
from serving.api import OpenAIService
from serving.config import load_config, parse_config
from serving.route_settings import RetrievalSettings
from tests.support.ingress import FakeLLM, chat

FARM = {"doc_id": "site-ostbridge", "chunk_id": "site-ostbridge#0", "score": 0.6,
        "title": "Ostbridge Farm (OST-02)", "section": "Ostbridge Farm (OST-02) > Site profile",
        "text": "# Ostbridge Farm (OST-02)\n\n## Site profile\n\nOstbridge is the second "
                "farm. It opened on 21 October 2016 in a hall at 47 Millrace Lane, "
                "Ostbridge. The site code is OST-02.\n\n- Staff: 72\n- Grow towers: 11"}
HISTORY = {"doc_id": "overview", "chunk_id": "overview#2", "score": 0.5, "title": "Overview",
           "section": "Overview > History",
           "text": "- 2012: the first farm, Tarrowmere (TAR-01), opened in June 2012.\n"
                   "- 2016: the Ostbridge farm (site code OST-02) opened in October 2016."}
QUESTION = "Who is the site manager of the farm that opened in October 2016?"


def hit(doc, n=0, score=0.5, text="text", **extra):
    return {"doc_id": doc, "chunk_id": f"{doc}#{n}", "score": score, "text": text,
            "title": doc, "section": "", **extra}


def test_stems_match_word_forms_and_numbers_lose_grouping():
    assert mh.stem("approved") == mh.stem("approval") == mh.stem("approve") == "approv"
    assert mh.stem("Tarrowmere's") == mh.stem("Tarrowmere") == "tarrowmer"
    assert mh.stem("3,200") == "3200"
    assert mh.content_stems("Who, by name, is the Head of IT?") == {mh.stem("name"), "head"}
    assert "ng" in mh.content_stems("managed by Halvard Ng")  # a capitalised short name


def test_question_weights_names_codes_and_numbers_but_not_months():
    w = mh.question_weights("Who approved IR-2024-017 for Halvard Ng in March 2024?")
    assert w["halvard"] == w["ng"] == mh.NAME_WEIGHT
    assert w["2024"] == mh.NUMBER_WEIGHT
    assert w["approv"] == w["march"] == 1.0


def test_units_are_lines_with_their_heading_and_a_table_row_with_its_header():
    text = ("# Leadership\n\n## Site managers\n\nEach site has a manager.\n\n"
            "| Site | Site code | Site manager |\n|------|-----|------|\n"
            "| Tarrowmere | TAR-01 | Halvard Ng |\n\n- **Staff:** 72")
    assert mh.units(text, "ignored") == [
        ("Each site has a manager.", "Site managers"),
        ("| Tarrowmere | TAR-01 | Halvard Ng |", "Site managers (Site Site code Site manager)"),
        ("Staff: 72", "Site managers")]
    long = "First sentence here. " * 20
    assert len(mh.units(long)) == 20


def test_phrases_are_names_titles_and_codes_not_sentence_capitals():
    common = {"every", "flight", "joined", "in"}
    assert mh.phrases("Every flight must be approved by the Chief Operating Officer and "
                      "booked 14 days ahead.", common, set()) == ["Chief Operating Officer"]
    assert mh.phrases("Joined in 2014 as Tarrowmere's first supervisor.", common,
                      set()) == ["Tarrowmere"]
    assert mh.phrases("| Tarrowmere | TAR-01 | Halvard Ng |", common, set()) == [
        "Tarrowmere", "TAR-01", "Halvard Ng"]
    assert mh.phrases("Home port: MV Hallow Tern (NFA-V05), since October 2016.", common,
                      set()) == ["MV Hallow Tern", "NFA-V05"]  # "Home port": a label
    # a lone capital at a sentence start is a name only if it is capitalised elsewhere
    assert mh.phrases("Ostbridge is the second farm.", common, set()) == []
    assert mh.phrases("Ostbridge is the second farm.", common, {"Ostbridge"}) == ["Ostbridge"]


def test_bridge_terms_come_from_the_unit_that_resolves_the_question():
    # the history line states "farm", "opened", "October 2016" and "site": it wins
    terms, resolved = mh.bridge_terms(QUESTION, [FARM, HISTORY])
    assert terms == ["Ostbridge", "OST-02", "Millrace Lane"]
    assert resolved == {"sit", "farm", "open", "octob", "2016"}  # "manager" is left
    assert len(mh.bridge_terms(QUESTION, [FARM, HISTORY], max_terms=1)[0]) == 1


def test_the_follow_up_drops_what_is_resolved_and_adds_the_names():
    query = mh.follow_up_query(QUESTION, [FARM, HISTORY])
    assert query is not None and "Ostbridge" in query and "manager" in query
    assert "opened" not in query and "2016" not in query.split(";")[0]
    whole = mh.follow_up_query(QUESTION, [FARM, HISTORY], whole_question=True)
    assert whole.startswith(QUESTION) and "Ostbridge" in whole


def test_no_follow_up_when_nothing_new_is_named_or_the_question_is_answered():
    assert mh.follow_up_query(QUESTION, []) is None
    plain = hit("notes", text="the farm opened in october 2016 and the manager is kind.")
    assert mh.follow_up_query(QUESTION, [plain]) is None  # no name to bridge with
    answered = hit("overview", text="Helix Verdant's registered number is HVC-CO-0719 "
                   "(filed with Lantern Row).")
    assert mh.follow_up_query("What is Helix Verdant's registered number?", [answered]) is None


def test_kept_chunks_and_the_filter_of_a_further_hop():
    first = [hit("a", 0, 0.9), hit("a", 1, 0.8), hit("b", 0, 0.7), hit("c", 0, 0.6)]
    assert mh.kept_for_hop(first, top_k=4, hop_k=2) == first[:2]
    assert mh.kept_for_hop(first, top_k=4, hop_k=4) == first[:1]  # the best one stays
    later = [*first[:2], {**hit("d"), "hop": 2}, *first[2:]]
    assert [h["doc_id"] for h in mh.kept_for_hop(later, 4, 2)] == ["a", "d"]
    assert mh.hop_filter(first[:3]) == {"doc_id": {"$nin": ["a", "b"]}}
    assert mh.hop_filter([]) is None


def test_merge_lists_new_chunks_after_the_kept_ones_and_ahead_of_the_weaker():
    first = [hit("a", 0, 0.9), hit("a", 1, 0.8), hit("b", 0, 0.7), hit("c", 0, 0.6)]
    found = [hit("d", 0, 0.7), hit("b", 0, 0.65), hit("e", 0, 0.5)]
    merged = mh.merge_hops(first, found, top_k=4, hop_k=2)
    assert [h["chunk_id"] for h in merged] == ["a#0", "a#1", "d#0", "b#0", "c#0"]
    assert [h.get("hop", 1) for h in merged] == [1, 1, 2, 2, 1]  # b#0 moved, not repeated
    assert "hop" not in found[0]  # the inputs are left as they were
    assert len(mh.merge_hops(first, found, top_k=4, hop_k=1)) == 5
    assert mh.merge_hops(first, [], top_k=4, hop_k=2) == first


def test_run_hops_searches_new_documents_with_the_follow_up():
    calls = []
    leadership = hit("leadership", 3, 0.45, "| Ostbridge | OST-02 | Celeste Abara |")

    def search(query, k, filter):
        calls.append((query, k, filter))
        return [leadership, hit("noise", 0, 0.1)]

    hits, queries = mh.run_hops(QUESTION, [FARM, HISTORY], search, hops=2, top_k=4,
                                hop_k=2, hop_terms=4, min_score=0.2)
    assert [h["doc_id"] for h in hits] == ["site-ostbridge", "overview", "leadership"]
    assert hits[-1]["hop"] == 2
    assert queries and "Ostbridge" in queries[0]
    assert calls == [(queries[0], 2, {"doc_id": {"$nin": ["overview", "site-ostbridge"]}})]
    assert mh.run_hops(QUESTION, [FARM], search, hops=1, top_k=4, hop_k=2, hop_terms=4,
                       min_score=0.2) == ([FARM], [])


def test_a_third_hop_starts_from_the_second_hops_chunks():
    second = hit("leadership", 3, 0.45,
                 "Celeste Abara manages Ostbridge and reports to the Head of Operations.")
    third = hit("ops", 0, 0.5, "text")
    results = iter([[second], [third]])
    seen = []

    def search(query, k, filter):
        seen.append(query)
        return next(results)

    hits, queries = mh.run_hops(QUESTION, [FARM, HISTORY], search, hops=3, top_k=4,
                                hop_k=1, hop_terms=4, min_score=0.2)
    assert [h.get("hop", 1) for h in hits] == [1, 1, 2, 3]
    assert queries[1].endswith("Celeste Abara; Ostbridge; Head of Operations")
    assert seen == queries


def test_settings_default_to_one_search_and_bound_the_hops():
    s = RetrievalSettings(index="kb")
    assert (s.hops, s.hop_k, s.hop_terms) == (1, 2, 4)
    assert RetrievalSettings(index="kb", hops=3, hop_k=1).hops == 3
    for bad in ({"hops": 0}, {"hops": 4}, {"hop_k": 0}, {"hop_terms": 0}):
        with pytest.raises(ValidationError):
            RetrievalSettings(index="kb", **bad)


class HopRetriever:
    """First search: the farm's page; a further one (with a doc_id filter): leadership."""

    def __init__(self):
        self.calls = []
        self.call = SimpleNamespace(remote=self._call)

    def options(self, **_):
        return self

    async def _call(self, method, *args):
        self.calls.append((method, args))
        name, query, top_k, filter, exclude, owner = args
        assert owner is None  # the API key's filter (auth off here)
        if filter is None:
            return {"result": [FARM, HISTORY]}
        return {"result": [hit("leadership", 3, 0.45, "| Ostbridge | OST-02 | Celeste Abara |"),
                           hit("leadership", 1, 0.1)]}


def config_with_hops(**retrieval):
    data = load_config().model_dump(mode="json")
    for route in data["routes"]:
        if route["name"] == "rag":
            route["retrieval"].update(retrieval)
    return parse_config(data, "test")


async def test_the_ingress_adds_the_second_hops_chunks():
    llm, retriever = FakeLLM(), HopRetriever()
    svc = OpenAIService(config_with_hops(hops=2), {"smollm2": llm}, retriever, None)
    response = await chat(svc, model="rag", messages=[{"role": "user", "content": QUESTION}])
    assert response.status_code == 200
    assert len(retriever.calls) == 2
    _, query, k, filter, exclude, _ = retriever.calls[1][1]
    assert "Ostbridge" in query and k == 2 and exclude == ["draft", "superseded"]
    assert filter == {"doc_id": {"$nin": ["overview", "site-ostbridge"]}}
    hits = llm.prompts[0].hits
    assert [h["chunk_id"] for h in hits] == ["site-ostbridge#0", "overview#2", "leadership#3"]
    metrics = svc.metrics.render()
    assert b'lorag_retrieval_duration_seconds_count{index="helix",route="rag"} 1.0' in metrics


async def test_one_hop_is_one_search():
    llm, retriever = FakeLLM(), HopRetriever()
    svc = OpenAIService(config_with_hops(), {"smollm2": llm}, retriever, None)
    await chat(svc, model="rag", messages=[{"role": "user", "content": QUESTION}])
    assert len(retriever.calls) == 1
    assert [h["chunk_id"] for h in llm.prompts[0].hits] == ["site-ostbridge#0",
                                                               "overview#2"]
