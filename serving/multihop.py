"""Multi-hop retrieval: a further search driven by what the first sources name.

Pure functions, no Ray: the ingress (`serving.api`) and `loadtest.bench_multihop` run
the same steps.

A question such as "Who is the site manager of the farm that opened in October 2016?"
needs two documents. The first search finds the farm's page (the question's words
match it), but the answer is in the leadership page, which shares with the question
only "site manager", as every site's manager row does. What links the two is a name
the first source states and the question does not: "Ostbridge". A further search
with the question and that name finds the leadership page's Ostbridge row.

The follow-up query (`follow_up_query`), without a model call:

1. Cut the previous hop's sources into units: lines (a bullet, a table row), long
   lines into sentences; each unit keeps its heading (and a table row its header row)
   as context.
2. Score each unit by the question's content words it states (crude stems: "approved"
   matches "approve"), weighted: names and codes the question states count triple,
   numbers double, words rarer among the units more (1 + ln(units / units stating
   it)), short units more (BM25's length normalisation), words only the unit's heading
   or title states half. The best unit is the one that resolves the part of the
   question the sources answer ("It opened on 21 October 2016 ... Ostbridge"), and the
   entity it names is what the rest of the question is about.
3. Bridge terms: from the units scoring at least UNIT_SHARE of the best, best first,
   their capitalised phrases (people, job titles, places, ships: "Chief Operating
   Officer", "MV Hallow Tern") and codes ("OST-02", "IR-2024-017") that the question
   does not already state; a unit that names none gives its document title's names
   (the entity a page is about: "Tarrowmere Farm (TAR-01)"). A capital that may be
   only the sentence's is not a name: "Every flight", "Joined in 2014".
4. The follow-up is the question less the content words the best unit resolved, then
   at most `max_terms` terms. No further hop when no term is found (the sources name
   nothing new) or the best unit states every content word of the question (the first
   hop answered it: a single-document question).

The further search leaves out the documents of the chunks it is listed after
(`kept_for_hop`, a metadata filter on doc_id), so that it spends its chunks on new
documents; `merge_hops` lists its chunks after the first hop's best top_k - hop_k and
ahead of the first hop's weaker ones, which a prompt budget drops first.

Measured by `python -m loadtest.bench_multihop` (no LLM: gold documents among the sources).
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["HOP_KEY", "MAX_UNIT_CHARS", "UNIT_SHARE", "stem", "content_stems",
           "question_weights", "units", "names_in", "phrases", "bridge_terms",
           "follow_up_query", "kept_for_hop", "hop_filter", "merge_hops", "hop_sources",
           "run_hops"]

HOP_KEY = "hop"  # set on each hit a further hop added: 2, 3

_STOP = frozenset("""a an the and or of to in on at by for from with as is are was were be
been being it its this that these those there then they them their what when where
which who whom whose how why does did do can could would should will shall may might
must not but than into onto over under about after before our your you his her she
him he we us per any all each every some such only also very just more most less
least one two yes no if so has have had""".split())
_CALENDAR = frozenset("""january february march april may june july august september
october november december monday tuesday wednesday thursday friday saturday sunday
jan feb mar apr jun jul aug sep sept oct nov dec""".split())
_SUFFIXES = ("ments", "ment", "ings", "ing", "ers", "ied", "ies", "er", "ed", "es", "al",
             "s", "e")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’]*|\d[\d,.:/]*\d|\d")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"(\[])")
# A capitalised word or a code (letters and digits joined by hyphens: OST-02, NFA-V05).
_CAP = r"(?:[A-Z][A-Za-z'’]*(?:-[A-Za-z'’]+)*|[A-Z0-9]*[A-Z][A-Z0-9]*-[A-Z0-9-]*[0-9][A-Z0-9]*)"
_CONNECT = r"(?:of|and|for|the|de|van|von|du|da|del|la|le|&)"
_PHRASE_RE = re.compile(rf"(?<![\w-]){_CAP}(?:[ \t]+(?:{_CONNECT}[ \t]+)?{_CAP})*(?![\w-])")
_CAP_WORD_RE = re.compile(r"(?<![\w-])[A-Z][A-Za-z'’-]*")
_CODE_RE = re.compile(r"^[A-Z0-9]*[A-Z][A-Z0-9]*-[A-Z0-9-]*\d")
_MARKUP_RE = re.compile(r"[*_`>]+")
_HEADING_RE = re.compile(r"^\s*#{1,6}\s+(.*)$")
_STARTS = ".!?:;|(\"[-"  # a word after one of these (or first) starts a sentence or cell
MAX_UNIT_CHARS = 300  # a longer line is cut into its sentences
NAME_WEIGHT, NUMBER_WEIGHT = 3.0, 2.0  # question terms that are names/codes, numbers
UNIT_SHARE = 0.5  # units scoring at least this share of the best give terms too


def stem(word: str) -> str:
    """A crude stem: lower case, no possessive, one common suffix off ("approved",
    "approval" and "approve" -> "approv"); numbers lose grouping commas ("3,200" ->
    "3200")."""
    w = word.lower().replace("’", "'").removesuffix("'s").strip("'")
    if w[:1].isdigit():
        return w.replace(",", "")
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[:-len(suffix)]
    return w


def _starts_at(text: str, pos: int) -> bool:
    before = text[:pos].rstrip()
    return not before or before[-1] in _STARTS


def content_stems(text: str) -> set[str]:
    """The stems of `text`'s content words: no stop words, numbers kept, two-letter
    words only when capitalised (a name: "Ng")."""
    out = set()
    for w in _WORD_RE.findall(text):
        lw = w.lower()
        if lw in _STOP:
            continue
        if w[0].isdigit() or len(lw) >= 3 or (len(w) == 2 and w[0].isupper()):
            out.add(stem(w))
    return out


def question_weights(question: str) -> dict[str, float]:
    """Each content stem of `question` -> its weight: names (capitalised words not
    starting the question, month and day names aside) and codes NAME_WEIGHT, numbers
    NUMBER_WEIGHT, others 1."""
    out: dict[str, float] = {}
    for m in _WORD_RE.finditer(question):
        w = m.group()
        for s in content_stems(w):
            weight = (NUMBER_WEIGHT if w[0].isdigit() else
                      NAME_WEIGHT if w[0].isupper() and not _calendar(w)
                      and not _starts_at(question, m.start()) else 1.0)
            out[s] = max(out.get(s, 0.0), weight)
    return out


def _table_rule(line: str) -> bool:
    return "-" in line and not line.strip().strip("|-: ")


def units(text: str, context: str = "") -> list[tuple[str, str]]:
    """`text` cut into (unit, context) pairs: a unit is a line (a bullet, a table row), a
    line longer than MAX_UNIT_CHARS one of its sentences; its context is the heading it
    sits under (`context` until the text's own first heading) and, for a table row, the
    table's header row. Headings, header rows, table rules and markup are not units."""
    out: list[tuple[str, str]] = []
    lines = text.splitlines()
    header = ""
    for n, raw in enumerate(lines):
        heading = _HEADING_RE.match(raw)
        if heading:
            context, header = heading.group(1).strip(), ""
            continue
        line = _MARKUP_RE.sub("", raw).strip(" -\t")
        if not line.strip("|-: "):  # blank or a table rule
            continue
        if line.startswith("|") or raw.lstrip().startswith("|"):
            if n + 1 < len(lines) and _table_rule(lines[n + 1]):  # a header row
                header = " ".join(c.strip() for c in line.split("|") if c.strip())
                continue
        else:
            header = ""
        parts = _SENTENCE_RE.split(line) if len(line) > MAX_UNIT_CHARS else [line]
        where = f"{context} ({header})" if header else context
        out += [(p.strip(), where) for p in parts if p.strip()]
    return out


def _is_code(word: str) -> bool:
    return bool(_CODE_RE.match(word))


def names_in(texts: list[str]) -> set[str]:
    """Capitalised words that appear somewhere not at the start of a sentence or cell:
    capitalised for themselves (names), not for their place."""
    out = set()
    for t in texts:
        t = _MARKUP_RE.sub("", t)
        out |= {m.group() for m in _CAP_WORD_RE.finditer(t) if not _starts_at(t, m.start())}
    return out


def _calendar(word: str) -> bool:
    w = word.lower()
    return w in _CALENDAR or (w.endswith("s") and w[:-1] in _CALENDAR)


def phrases(unit: str, common: set[str], names: set[str]) -> list[str]:
    """The capitalised phrases and codes of `unit`, without leading and trailing stop
    and calendar words. A capital that may be only the sentence's (or table cell's) is
    not taken for a name: a phrase's first word at the start of a sentence or cell loses
    it when the sources also write it in lower case (`common`: "Every flight"), and a
    lone such word that goes on into lower-case text ("Joined in 2014", "Alcohol may
    not") is left out unless `names` holds it (capitalised elsewhere mid-sentence)."""
    out = []
    for match in _PHRASE_RE.finditer(unit):
        words = match.group().split()
        at_start = _starts_at(unit, match.start())

        def plain(w: str) -> bool:
            return not _is_code(w) and (w.lower() in _STOP or _calendar(w))

        while words and (plain(words[0]) or (at_start and words[0].lower() in common
                                             and not _is_code(words[0]))):
            words.pop(0)
            at_start = False
        while words and plain(words[-1]):
            words.pop()
        if not words:
            continue
        if len(words) == 1 and not _is_code(words[0]):
            word = words[0]
            after = unit[match.end():].lstrip()
            if len(word) <= 2 or (at_start and word not in names and (
                    not after or after[0].islower() or after[0] == ":")):
                continue
        phrase = " ".join(words)
        out.append(re.sub(r"['’]s$", "", phrase))
    return out


def _best_units(question: str, sources: list[dict[str, Any]]
                ) -> list[tuple[float, str, set[str], int]]:
    """The units of `sources` sharing terms with `question`, best first: (score, unit,
    the question stems it or its heading states, the rank of its source).

    A question stem counts by its weight (`question_weights`) times its rarity among
    the units (1 + ln(units / units stating it)); one the unit itself states counts
    in full, scaled down for long units as BM25 does (b = 0.5: "Home port: Brannock
    Quay" beats a paragraph that also says "home port"), one only its heading or its
    document's title states counts half."""
    asked = question_weights(question)
    cut = []
    for rank, h in enumerate(sources):
        title = h.get("title") or ""
        for i, (unit, heading) in enumerate(units(h.get("text") or "",
                                                  h.get("section") or title)):
            words = content_stems(unit)
            own = words & asked.keys()
            near = content_stems(f"{title} {heading}") & asked.keys()
            cut.append((rank, i, unit, own, near - own, len(words)))
    if not cut:
        return []
    df: dict[str, int] = {}
    for _, _, _, own, near, _ in cut:
        for w in own | near:
            df[w] = df.get(w, 0) + 1
    mean_len = sum(c[5] for c in cut) / len(cut) or 1.0

    def weight(words: set[str]) -> float:
        return sum(asked[w] * (1.0 + math.log(len(cut) / df[w])) for w in words)

    ranked = sorted(((weight(own) / (0.5 + 0.5 * n / mean_len) + 0.5 * weight(near),
                      -rank, -i, unit, own | near, rank)
                     for rank, i, unit, own, near, n in cut if own), reverse=True)
    return [(score, unit, stated, rank) for score, _, _, unit, stated, rank in ranked]


def bridge_terms(question: str, sources: list[dict[str, Any]], max_terms: int = 4
                 ) -> tuple[list[str], set[str]]:
    """The names and codes that the units of `sources` (hits, best first) best matching
    `question` state and the question does not, at most `max_terms`, best unit first;
    and the question stems the best unit (with its heading) states: the part of the
    question the sources have resolved. See the module docstring."""
    if max_terms <= 0 or not sources:
        return [], set()
    best = _best_units(question, sources)
    if not best:
        return [], set()
    texts = [h.get("text") or "" for h in sources]
    common = {w for t in texts for w in re.findall(r"(?<![\w-])[a-z][a-z'’]+", t)}
    names = names_in(texts)
    asked = content_stems(question)
    terms: list[str] = []
    seen: set[str] = set()
    for score, unit, _, rank in best:
        if score < UNIT_SHARE * best[0][0]:
            break
        # The unit's own names first, then its document's title's (the entity a page
        # is about: "Tarrowmere Farm (TAR-01)" for "Lighting runs on an 18-hour ...").
        found = [p for p in phrases(unit, common, names)
                 if p.lower() not in seen and not content_stems(p) <= asked]
        if not found:  # then the names of the page's title (the entity it is about)
            title = sources[rank].get("title") or ""
            found = [p for p in phrases(title, common, names)
                     if any(_is_code(w) or w in names for w in p.split())]
        for phrase in found:
            key = phrase.lower()
            if key in seen or content_stems(phrase) <= asked:
                continue
            seen.add(key)
            terms.append(phrase)
            if len(terms) >= max_terms:
                return terms, best[0][2]
    return terms, best[0][2]


def follow_up_query(question: str, sources: list[dict[str, Any]], max_terms: int = 4,
                    *, whole_question: bool = False) -> str | None:
    """The next hop's query, or None when the sources name nothing the question does
    not (no further hop): the question less the content words the best unit resolved
    (with `whole_question`, the question as it is), then the bridge terms.

    The resolved words go: the further search only sees other documents, and words
    that matched the first document ("opened", "October 2016") would draw it to
    whichever other document shares them (an annual report), not to the one about the
    bridge entity."""
    terms, resolved = bridge_terms(question, sources, max_terms)
    if not terms or content_stems(question) <= resolved:
        return None  # nothing new named, or the best unit states all the question asks
    if whole_question:
        rest = question.strip()
    else:
        rest = " ".join(w for w in _WORD_RE.findall(question)
                        if not (content_stems(w) & resolved))
    return f"{rest} {'; '.join(terms)}".strip()


def kept_for_hop(hits: list[dict[str, Any]], top_k: int, hop_k: int
                 ) -> list[dict[str, Any]]:
    """The chunks of `hits` that a further hop's chunks are listed after: the first hop's
    best, as many as leave `hop_k` places under `top_k` (its best one at least), then
    those earlier further hops added. The further search leaves their documents out."""
    first = [h for h in hits if h.get(HOP_KEY, 1) == 1]
    later = [h for h in hits if h.get(HOP_KEY, 1) != 1]
    return first[:max(top_k - hop_k - len(later), 1)] + later


def hop_filter(kept: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The search filter of a further hop: none of the documents `kept` comes from (a
    further hop spends its chunks on new documents)."""
    docs = sorted({h["doc_id"] for h in kept})
    return {"doc_id": {"$nin": docs}} if docs else None


def merge_hops(hits: list[dict[str, Any]], found: list[dict[str, Any]], top_k: int,
               hop_k: int, hop: int = 2) -> list[dict[str, Any]]:
    """`hits` (the sources so far) with up to `hop_k` chunks of `found` (hop number
    `hop`'s hits, best first) added, each marked {"hop": hop}; a chunk already in `hits`
    (same chunk_id) is not added twice.

    The new chunks are listed after `kept_for_hop` and ahead of the first hop's other
    chunks: a hop adds sources (top_k + (hops - 1) * hop_k at most in all), and a prompt
    budget (max_context_tokens) that cannot fit them all, which keeps sources in list
    order, drops the first hop's weakest first. With a budget of top_k sources the new
    chunks take the place of the first hop's weakest."""
    kept = kept_for_hop(hits, top_k, hop_k)
    have = {h.get("chunk_id") for h in kept}
    new: list[dict[str, Any]] = []
    for h in found:
        if len(new) >= hop_k:
            break
        if h.get("chunk_id") not in have:
            have.add(h.get("chunk_id"))
            new.append({**h, HOP_KEY: hop})
    return kept + new + [h for h in hits if h.get("chunk_id") not in have]


async def hop_sources(question: str, hits: list[dict[str, Any]],
                      search: Callable[[str, int, dict[str, Any] | None],
                                       Awaitable[list[dict[str, Any]]]],
                      *, hops: int, top_k: int, hop_k: int, hop_terms: int, min_score: float,
                      follow_up: Callable[[str, list[dict[str, Any]], int], str | None]
                      | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The sources after `hops` - 1 further hops from the first hop's usable `hits`
    (most similar first), and the follow-up queries searched. `await search(query, k,
    filter)` returns a search's hits, best first; `follow_up(question, sources,
    hop_terms)` makes the next query (default `follow_up_query`). The ingress
    (`serving.api`) runs it; `run_hops` is its synchronous form."""
    follow_up = follow_up or follow_up_query
    queries: list[str] = []
    sources = hits
    for hop in range(2, hops + 1):
        query = follow_up(question, sources, hop_terms) if sources else None
        if query is None:  # the sources name nothing the question does not
            break
        queries.append(query)
        kept = kept_for_hop(hits, top_k, hop_k)
        found = sorted((h for h in await search(query, hop_k, hop_filter(kept))
                        if h["score"] >= min_score), key=lambda h: -h["score"])  # usable_hits
        hits = merge_hops(hits, found, top_k, hop_k, hop)
        sources = [h for h in hits if h.get(HOP_KEY) == hop]
    return hits, queries


def run_hops(question: str, hits: list[dict[str, Any]],
             search: Callable[[str, int, dict[str, Any] | None], list[dict[str, Any]]],
             **options: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """`hop_sources` with a synchronous `search`, for the benchmark and the tests."""
    import asyncio

    async def searched(query: str, k: int, flt: dict[str, Any] | None) -> list[dict[str, Any]]:
        return search(query, k, flt)

    return asyncio.run(hop_sources(question, hits, searched, **options))
