"""Retrieval-augmented prompts and citations: pure functions, no Ray and no engine.

The ingress retrieves (`search_query`, `usable_hits`); the LLM replica, which
holds the model's tokenizer, fits the sources into the token budget
(`fit_sources`) and rewrites the conversation (`build_messages`); both sides
and the adapter training data (`tools/context_json_data/make_context_json.py`)
render prompts with these same functions, so a LoRA trained to use sources
sees at serving time exactly the prompt shape it was trained on.

Citations follow Perplexity's chat-completions convention: a top-level
`citations` array on the response (and on the first streamed chunk) whose
entry ``n - 1`` is the source the inline marker ``[n]`` refers to. Perplexity
lists URLs there; our entries are objects describing the indexed chunk.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from serving.route_settings import PromptTemplate, RetrievalSettings
from serving.streaming import DONE, event, rewrite_events

__all__ = ["DEFAULT_ANSWER_RESERVE", "SNIPPET_CHARS", "MARKER_RE", "text_of",
           "search_query", "usable_hits", "render_source", "build_messages", "fit_sources",
           "prepare_messages", "citation", "cited_numbers", "attribute", "add_marker",
           "claims", "grounded", "fix_citations", "MAX_FENCES", "unwrap_json_fence",
           "with_citations_first_event", "no_context_response", "no_context_stream"]

DEFAULT_ANSWER_RESERVE = 256  # tokens kept for the answer when the request sets no max_tokens
SNIPPET_CHARS = 240
_DELIMITER_RE = re.compile(r"</?\s*sources\s*>", re.I)
MARKER_RE = re.compile(r"\[(\d{1,3})\]")


def text_of(content: Any) -> str:
    """The text of a message's content (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content
                         if isinstance(p, dict) and p.get("type") == "text")
    return ""


def search_query(messages: list[dict[str, Any]], turns: int = 1) -> str:
    """The search query: the text of the latest `turns` user messages, oldest first."""
    users = [text_of(m.get("content")).strip() for m in messages if m.get("role") == "user"]
    return "\n".join(t for t in users[-turns:] if t)


def usable_hits(hits: list[dict[str, Any]], settings: RetrievalSettings) -> list[dict[str, Any]]:
    """Hits whose score (cosine similarity) is at least min_score, most similar first.

    The retriever's ranking (fused, for a hybrid index) decides which chunks are the
    top k; within them the prompt lists the most similar first, the order the
    context-json adapter was trained on. Presenting them in fused order instead made
    the 135M model take a figure from the wrong site in the e2e test."""
    kept = [h for h in hits if h["score"] >= settings.min_score]
    return sorted(kept, key=lambda h: -h["score"])


def render_source(template: PromptTemplate, n: int, hit: dict[str, Any],
                  text: str | None = None) -> str:
    """One numbered source; the block delimiters are neutralised inside document text."""
    title, section = hit.get("title") or hit["doc_id"], hit.get("section") or ""
    body = _DELIMITER_RE.sub("(sources)", hit["text"] if text is None else text)
    return template.source.format(
        n=n, doc_id=hit["doc_id"], chunk_id=hit.get("chunk_id", ""), title=title,
        section=section, heading=_heading(title, section), text=body)


def _heading(title: str, section: str) -> str:
    """"title > section path", without the title twice when the path starts with it (a
    document whose title is its first heading)."""
    if not section or section == title or section.startswith(f"{title} > "):
        return section or title
    return f"{title} > {section}"


def build_messages(template: PromptTemplate, messages: list[dict[str, Any]], *,
                   retrieval: bool, sources: list[str] | None = None) -> list[dict[str, Any]]:
    """The conversation the model sees: route instructions first, sources in the last
    user message (retrieval routes), everything else as the client sent it."""
    out = [dict(m) for m in messages]
    system = template.system_for(retrieval)
    if system:
        if out and out[0].get("role") in ("system", "developer"):
            out[0]["content"] = f"{system}\n\n{text_of(out[0].get('content'))}"
            out[0]["role"] = "system"
        else:
            out.insert(0, {"role": "system", "content": system})
    if retrieval:
        last = max(i for i, m in enumerate(out) if m.get("role") == "user")
        question = text_of(out[last].get("content")).strip()
        out[last]["content"] = template.context.format(
            sources="\n\n".join(sources or []), question=question)
    return out


def fit_sources(template: PromptTemplate, hits: list[dict[str, Any]], budget: int,
                count: Callable[[str], int], truncate: Callable[[str, int], str]
                ) -> list[tuple[dict[str, Any], str]]:
    """Sources in rank order while they fit in `budget` tokens; the best one is
    shortened rather than dropped when it alone is too long."""
    chosen: list[tuple[dict[str, Any], str]] = []
    used = 0
    for hit in hits:
        n = len(chosen) + 1
        rendered = render_source(template, n, hit)
        cost = count(rendered) + 2  # the blank line between sources
        if used + cost > budget:
            if chosen:
                break
            overhead = count(render_source(template, n, hit, text="")) + 2
            room = budget - overhead
            if room < 16:
                break
            rendered = render_source(template, n, hit, text=truncate(hit["text"], room))
            cost = count(rendered) + 2
        chosen.append((hit, rendered))
        used += cost
    return chosen


def prepare_messages(tokenizer: Any, template: PromptTemplate, messages: list[dict[str, Any]],
                     hits: list[dict[str, Any]], *, max_context_tokens: int,
                     max_model_len: int, answer_tokens: int
                     ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """The retrieval route's final conversation and the sources it holds.

    Sources get the smaller of `max_context_tokens` and what `max_model_len`
    leaves after the rest of the prompt (chat template included) and the answer,
    counted with the model's own tokenizer, so the prompt never overflows.
    """
    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    def truncate(text: str, tokens: int) -> str:
        return tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)[:tokens])

    bare = build_messages(template, messages, retrieval=True, sources=[])
    used = count(tokenizer.apply_chat_template(
        [{**m, "content": text_of(m.get("content"))} for m in bare],
        tokenize=False, add_generation_prompt=True))
    budget = min(max_context_tokens, max_model_len - used - answer_tokens)
    chosen = fit_sources(template, hits, budget, count, truncate)
    final = build_messages(template, messages, retrieval=True,
                           sources=[text for _, text in chosen])
    return final, chosen


def citation(n: int, index: str, hit: dict[str, Any]) -> dict[str, Any]:
    """One entry of the `citations` array (documented in docs/routes.md, "Citations")."""
    text = " ".join(hit["text"].split())
    snippet = text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS - 1].rstrip() + "…"
    entry = {"number": n, "index": index, "doc_id": hit["doc_id"],
             "chunk_id": hit.get("chunk_id"), "title": hit.get("title") or hit["doc_id"],
             "section": hit.get("section") or "", "snippet": snippet,
             "score": round(float(hit["score"]), 4)}
    if math.isfinite(hit.get("rerank_score", math.nan)):  # retrieval.rerank: mean log-prob
        entry["rerank_score"] = round(float(hit["rerank_score"]), 4)
    return entry


def cited_numbers(text: str, count: int) -> list[int]:
    """The source numbers [n] that `text` cites, in order of first use, 1..count only."""
    seen: list[int] = []
    for m in MARKER_RE.finditer(text or ""):
        n = int(m.group(1))
        if 1 <= n <= count and n not in seen:
            seen.append(n)
    return seen


_WORD_RE = re.compile(r"[\w€$£%.-]+")
_STOP = frozenset("""the and for are was were with that this from have has had not but
what when where which who whom how why does did can could would should will shall may
might must its their there they them then than into onto over under about after before
our your you his her she him per any all each every some such only also very just more
most less least one two yes""".split())


def _terms(text: str) -> set[str]:
    out = set()
    for w in _WORD_RE.findall(text.lower()):
        w = w.strip(".-")
        if any(c.isdigit() for c in w) or (len(w) >= 3 and w not in _STOP):
            out.add(w)
    return out


def attribute(answer: str, sources: list[str]) -> int | None:
    """The number of the source an answer draws on most (shared terms; numbers and
    codes count triple), or None when no source shares at least two terms' worth."""
    terms = _terms(answer)
    best, best_score = None, 0
    for n, text in enumerate(sources, 1):
        shared = terms & _terms(text)
        score = sum(3 if any(c.isdigit() for c in w) else 1 for w in shared)
        if score > best_score:
            best, best_score = n, score
    return best if best_score >= 2 else None


def add_marker(answer: str, sources: list[str]) -> str:
    """`answer` with " [n]" appended when it cites nothing and draws on source n."""
    if cited_numbers(answer, len(sources)):
        return answer
    n = attribute(answer, sources)
    return answer if n is None else f"{answer.rstrip()} [{n}]"


# -- grounding: an answer whose figures and names are in no source was invented ---------

_CLAIM_RE = re.compile(r"[\w€$£%°.,/-]+")
_SYMBOLS_RE = re.compile(r"[€$£%°]")
_GROUPED_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NOT_NAMES = frozenset("""the this that these those there then they their its his her
answer source sources question yes not none""".split())


def _norm(text: str) -> str:
    return _SYMBOLS_RE.sub("", _GROUPED_RE.sub("", text.lower()))


def claims(answer: str) -> tuple[list[str], list[str]]:
    """(figures, names) an answer states: tokens with a digit ("€1,310" -> "1310",
    "HV-SK-502"), and the parts of capitalised words ("Lindqvist-Haar" -> "lindqvist",
    "haar"); citation markers are ignored."""
    figures, names = [], []
    for token in _CLAIM_RE.findall(MARKER_RE.sub(" ", answer or "")):
        token = token.strip(".,/-")
        if any(c.isdigit() for c in token):
            if core := _norm(token).strip(".,/-"):
                figures.append(core)
        elif token[:1].isupper() and token.lower() not in _NOT_NAMES:
            names += [p for p in token.lower().split("-") if len(p) >= 3]
    return figures, names


def _stated(claim: str, text: str) -> bool:
    if re.search(r"(?<![\w.])" + re.escape(claim) + r"(?![\w]|[.,]\d)", text):
        return True
    parts = [x for x in claim.split("-") if x]  # "12-month" is grounded by "12 months"
    return len(parts) > 1 and all(_stated(x, text) for x in parts)


def grounded(answer: str, texts: list[str]) -> bool:
    """Whether an answer's figures and names come from `texts` (the sources the model was
    given and the question): with figures, at least one of them must occur there; without,
    at least half of its capitalised names. A 135M model asked what the sources do not
    say invents a figure or a name rather than saying it does not know; the figures a
    correct answer states are copied from a source.

    >>> grounded("It has 12 delivery vans [1].", ["[1] Fleet: 9 vans."])
    False
    """
    figures, names = claims(answer)
    haystack = _norm(" ".join(texts))
    if figures:
        return any(_stated(f, haystack) for f in figures)
    if names:
        return 2 * sum(_stated(n, haystack) for n in names) >= len(names)
    return True


def fix_citations(answer: str, sources: list[str]) -> str:
    """`answer` with each marker [n] whose source states none of the answer's figures
    re-pointed to the first source that states them all (sources are listed most similar
    first). A small model copies the right figure and then cites its neighbour; answers
    without figures, and citations no other source can replace, are left as they are.

    >>> fix_citations("It is 91% [2].", ["[1] Rate: 91%.", "[2] Report: 94% elsewhere."])
    'It is 91% [1].'
    """
    figures, _ = claims(answer)
    if not figures:
        return answer
    texts = [_norm(MARKER_RE.sub(" ", text)) for text in sources]
    stated = [sum(_stated(f, t) for f in figures) for t in texts]  # figures each states
    if len(figures) not in stated:
        return answer
    best = stated.index(len(figures)) + 1

    def repoint(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f"[{best}]" if 1 <= n <= len(sources) and not stated[n - 1] else m.group(0)
    return MARKER_RE.sub(repoint, answer)


# -- JSON answers: a Markdown code fence around the JSON is taken off -------------------

_FENCE_RE = re.compile(r"`{3,}")
_FENCE_TAG_RE = re.compile(r"[ \t]*(json)?[ \t]*(?:\r?\n|(?=[\[{\"\s]))", re.I)
MAX_FENCES = 64  # backtick runs looked at; beyond them the answer is left as it is


def _is_json(text: str) -> bool:
    def constant(name: str) -> Any:  # NaN, Infinity: Python's, not JSON
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=constant)
    except ValueError:
        return False
    return True


def unwrap_json_fence(text: str) -> str:
    r"""The JSON inside the first Markdown code fence of `text` (```json or a bare ```,
    prose before or after it allowed) when that inside parses as JSON; otherwise `text`
    unchanged. Small models wrap JSON answers in fences, as chat models are taught to.

    An answer that is JSON already is left as it is, fences inside its strings too. In
    a fenced one, backticks inside JSON strings are kept: the closing fence is the first
    one before which the inside parses. An unclosed fence (the answer stopped at
    max_tokens) is unwrapped when the rest parses.

    >>> unwrap_json_fence('Here is the JSON:\n```json\n{"a": 1}\n```')
    '{"a": 1}'
    >>> unwrap_json_fence('[1]')
    '[1]'
    """
    if "```" not in text or _is_json(text.strip()):  # a fence inside a JSON string stays
        return text
    runs = list(_FENCE_RE.finditer(text))[:MAX_FENCES]
    for i, opening in enumerate(runs):
        tag = _FENCE_TAG_RE.match(text, opening.end())
        if tag is None:  # another language (```python), or text right after the fence
            continue
        start = tag.end()
        for closing in runs[i + 1:]:
            if len(closing.group()) < len(opening.group()) or closing.start() < start:
                continue
            inside = text[start:closing.start()].strip()
            if inside and _is_json(inside):
                return inside
        inside = text[start:].strip()
        if inside and _is_json(inside):  # never closed
            return inside
    return text


def with_citations_first_event(sse: str, citations: list[dict[str, Any]]) -> str:
    """Add `citations` to the first `data:` event of an SSE string."""
    first = True

    def edit(event: dict[str, Any]) -> bool:
        nonlocal first
        if first:
            event["citations"] = citations
            first = False
            return True
        return False

    return rewrite_events(sse, edit)


# -- answers without the model (no source passed min_score) ---------------------------


def _n(request: Any) -> int:
    return getattr(request, "n", None) or 1


def no_context_response(request: Any, model: str, text: str) -> dict[str, Any]:
    """A chat.completion answering `text` (no tokens generated: usage is zero)."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
        "created": int(time.time()), "model": model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": text},
                     "logprobs": None, "finish_reason": "stop"} for i in range(_n(request))],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "citations": [],
    }


def no_context_stream(request: Any, model: str, text: str) -> Iterator[str]:
    """The same answer as SSE chunks: role (+ citations), content, finish, usage, [DONE]."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> str:
        return event({**base, "choices": choices, **extra})

    n = _n(request)
    yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""},
                  "logprobs": None, "finish_reason": None} for i in range(n)], citations=[])
    yield chunk([{"index": i, "delta": {"content": text}, "logprobs": None,
                  "finish_reason": None} for i in range(n)])
    yield chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": "stop"}
                 for i in range(n)])
    options = getattr(request, "stream_options", None)
    if options is not None and getattr(options, "include_usage", False):
        yield chunk([], usage={"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    yield DONE
