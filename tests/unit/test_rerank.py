"""Reranking a retrieval route's candidates by query likelihood (`retrieval.rerank`):
the prompts scored, the choice of kept hits, the settings, the retriever's method, the
ingress path (fake handles) and the real scorer (SmolLM2 through transformers)."""

import asyncio
import math
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from retrieval import reranker
from retrieval.errors import RerankerUnavailableError
from retrieval.service import RetrieverService
from serving import rag
from serving.api import OpenAIService
from serving.config import ConfigError, load_config, parse_config
from serving.route_settings import RetrievalSettings
from tests.support.ingress import FakeLLM, chat


class CharTokenizer:
    """One token id per character: lengths are easy to reason about."""

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


HITS = [{"chunk_id": f"d#{i}", "doc_id": "d", "text": t, "score": 0.9 - i / 10}
        for i, t in enumerate(["alpha", "bravo", "charlie", "delta"])]


def test_rerank_prompts_end_with_the_query_and_say_how_long_it_is():
    prompts, n = reranker.rerank_prompts(CharTokenizer(), "why?", ["alpha", "bravo"], 200)
    text = "".join(map(chr, prompts[0]))
    assert text == reranker.HEAD + "alpha" + reranker.TAIL + " why?"
    assert n == len(" why?") and "".join(map(chr, prompts[1][-n:])) == " why?"


def test_rerank_prompts_cut_long_passages_to_fit():
    prompts, n = reranker.rerank_prompts(CharTokenizer(), "why?", ["x" * 500], max_len=120)
    assert len(prompts[0]) == 120
    assert "".join(map(chr, prompts[0])).endswith(reranker.TAIL + " why?")


def test_keep_reranked_keeps_the_best_scored_in_their_original_order():
    kept = reranker.keep_reranked(HITS, [-3.0, -1.0, -4.0, -0.5], top_k=2)
    assert [h["chunk_id"] for h in kept] == ["d#1", "d#3"]  # similarity order kept
    assert [h["rerank_score"] for h in kept] == [-1.0, -0.5]
    assert rag.citation(1, "kb", kept[0])["rerank_score"] == -1.0
    assert "rerank_score" not in rag.citation(1, "kb", HITS[0])
    # a score that is not finite is not sent (-Infinity is not JSON)
    assert "rerank_score" not in rag.citation(1, "kb", {**HITS[0], "rerank_score": -math.inf})


def test_rerank_needs_more_candidates_than_it_keeps():
    settings = RetrievalSettings(index="kb", top_k=4, rerank={"candidates": 8})
    assert settings.rerank.candidates == 8 and settings.rerank.model == "smollm2-135m-instruct"
    assert RetrievalSettings(index="kb").rerank is None
    with pytest.raises(ValidationError, match="must be more than top_k"):
        RetrievalSettings(index="kb", top_k=4, rerank={"candidates": 4})
    with pytest.raises(ValidationError):
        RetrievalSettings(index="kb", rerank={"candidates": 8, "window": 3})


def config_with_rerank(rerank, **retrieval):
    data = load_config().model_dump(mode="json")
    data["retrieval"].update(retrieval)
    for route in data["routes"]:  # only rag reranks
        if route["retrieval"] is not None:
            route["retrieval"]["rerank"] = rerank if route["name"] == "rag" else None
    return parse_config(data, "test")


def test_a_route_names_a_configured_rerank_model():
    cfg = config_with_rerank({"candidates": 8})
    assert cfg.rerank_models_used() == {"smollm2-135m-instruct": reranker.DEFAULT_RERANKER}
    with pytest.raises(ConfigError, match=r"routes\.1\.retrieval\.rerank\.model.*'mine'"):
        config_with_rerank({"model": "mine", "candidates": 8})
    cfg = config_with_rerank({"model": "mine", "candidates": 8},
                             rerank_models={"mine": "/models/mine", "other": "/models/o"})
    assert cfg.rerank_models_used() == {"mine": "/models/mine"}


class LikesWord:
    """A scorer that prefers passages holding `word`."""

    def __init__(self, word):
        self.word, self.calls = word, []

    def score(self, query, texts):
        self.calls.append((query, list(texts)))
        return [-0.5 if self.word in t else -3.0 - i / 10 for i, t in enumerate(texts)]


def test_the_retriever_keeps_the_hits_the_model_scores_best(tmp_path):
    service = RetrieverService(tmp_path, {}, {})
    service._rerankers["ql"] = LikesWord("charlie")
    kept = asyncio.run(service.rerank("ql", "which?", HITS, 2))
    assert [h["chunk_id"] for h in kept] == ["d#0", "d#2"]  # d#0 beats the other losers
    assert service._rerankers["ql"].calls == [("which?", [h["text"] for h in HITS])]
    with pytest.raises(RerankerUnavailableError, match="no rerank model 'other'"):
        asyncio.run(service.rerank("other", "which?", HITS, 2))


class FakeRetriever:
    """Search returns 8 chunks; rerank runs the real service method on a fake scorer."""

    def __init__(self, tmp_path):
        self.calls = []
        self.service = RetrieverService(tmp_path, {}, {})
        self.service._rerankers["smollm2-135m-instruct"] = LikesWord("needle")
        self.call = SimpleNamespace(remote=self._call)

    def options(self, **_):
        return self

    async def _call(self, method, *args):
        self.calls.append((method, args))
        if method == "search":
            name, query, top_k, _, _, _ = args
            texts = [f"hay {i}" for i in range(top_k)]
            texts[6] = "the needle"
            return {"result": [{"doc_id": f"doc{i}", "chunk_id": f"doc{i}#0", "title": "t",
                                "section": "", "text": t, "score": 0.9 - i / 100}
                               for i, t in enumerate(texts)]}
        return {"result": await self.service.rerank(*args)}


async def test_the_ingress_fetches_candidates_and_sends_the_kept_ones(tmp_path):
    llm, retriever = FakeLLM(), FakeRetriever(tmp_path)
    svc = OpenAIService(config_with_rerank({"candidates": 8}), {"smollm2": llm}, retriever,
                        None)
    assert (await chat(svc, model="rag")).status_code == 200
    assert [c[0] for c in retriever.calls] == ["search", "rerank"]
    assert retriever.calls[0][1][2] == 8  # candidates fetched
    hits = llm.prompts[0].hits
    assert len(hits) == 4 and "doc6" in [h["doc_id"] for h in hits]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert b"lorag_rerank_duration_seconds_count{route=\"rag\"} 1.0" in svc.metrics.render()


@pytest.fixture(scope="module")
def smollm2():
    return reranker.QueryLikelihoodReranker(max_len=256, batch_size=2)


def test_smollm2_scores_the_passage_that_answers_the_question_highest(smollm2):
    passages = ["The Ostbridge site recovered 91% of its process water in 2025.",
                "Tarrowmere's canteen opens at seven and closes at three.",
                "Members elect the board every second spring; the vote is by post. " * 3]
    scores = smollm2.score("What share of its process water did Ostbridge recover?",
                           passages)
    assert scores[0] == max(scores) and all(-20 < s < 0 for s in scores)
    # batches of 2 with left padding give each passage the score it gets alone
    alone = [smollm2.score("What share of its process water did Ostbridge recover?", [p])[0]
             for p in passages]
    assert scores == pytest.approx(alone, abs=1e-3)
