"""Lexical side of hybrid search: safe FTS5 queries and reciprocal rank fusion.

User text never reaches FTS5's query language as syntax. It is split into terms
the way FTS5's `unicode61` tokenizer splits text (runs of letters and digits;
everything else, hyphens included, separates), stop words and single letters
are dropped, and each term becomes a double-quoted string, ORed together.
Inside quotes FTS5 knows no operators (AND, NEAR(, *, :, - are plain text), and
a quote is escaped by doubling it. A code such as ``PK-4471`` is indexed as the
two tokens ``pk`` ``4471``, so it is searched as the phrase ``"pk 4471"`` (the
tokens adjacent, in order) plus its parts, which ranks the exact code first.

    >>> fts_query('What is the status of order "PK-4471"?')
    '"status" OR "order" OR "pk 4471" OR "pk" OR "4471"'

Which terms: a query searches its rarest terms while the chunks they occur in
(`TermCounts`, cached) add up to a budget (`select_terms`; the index's
`lexical_share` of its chunks, capped by `max_lexical_matches`), and leaves
common words to the dense side. Two reasons. Quality: reciprocal rank fusion
rewards a chunk for being in both candidate lists, and weak matches on common
words put chunks there by chance, above the best dense hit (on the helix sample
questions searching every term lost 3 of 36 answers dense search found).
Cost: FTS5 has no top-k shortcut; `ORDER BY rank` computes bm25 for every chunk
any searched term occurs in (~2.5 us each on one core here: a term in 17% of
100k chunks costs ~40 ms).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

MAX_TERMS = 32  # bounds the count lookups one query makes, whatever its length

# Letters and digits of any script (FTS5 unicode61: categories L*, N*); `_` separates.
_TOKEN_RE = re.compile(r"[^\W_]+")
# A word: tokens joined by connectors without spaces, e.g. PK-4471, v1.2.3, a/b, x_y.
_WORD_RE = re.compile(r"[^\W_]+(?:[-_./:][^\W_]+)*")

STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing done down during each
else ever few for from further had has have having he her here hers herself him himself
his how i if in into is it its itself just let me more most my myself no nor not now of
off on once only or other our ours ourselves out over own please same shall she should so
some such tell than that the their theirs them themselves then there these they this
those through to too under until up upon us very was we were what when where which while
who whom whose why will with within without would yes you your yours yourself yourselves
""".split())


def _keep(token: str) -> bool:
    return any(c.isdigit() for c in token) or (len(token) > 1 and token not in STOP_WORDS)


def _fold(text: str) -> str:
    """Lower case without diacritics, as unicode61 indexes text (café -> cafe)."""
    decomposed = unicodedata.normalize("NFD", text.casefold())
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


def query_terms(text: str) -> list[str]:
    """The terms of `text` to search for, folded like the index, in order, unique.

    A multi-token word (``PK-4471``, ``v1.2.3``) yields its tokens as one phrase,
    then those of its tokens longer than one character (``2`` alone would match
    too much to help).
    """
    terms: list[str] = []
    for word in _WORD_RE.findall(_fold(text)):
        tokens = _TOKEN_RE.findall(word)
        if len(tokens) == 1:
            terms.extend(t for t in tokens if _keep(t))
        elif not all(t in STOP_WORDS for t in tokens):
            terms.append(" ".join(tokens))
            terms.extend(t for t in tokens if len(t) > 1 and _keep(t))
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def fts_match(terms: list[str]) -> str | None:
    """The FTS5 MATCH expression ORing `terms` as quoted strings; None for no terms."""
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression for all the terms of `text` (no count budget)."""
    return fts_match(query_terms(text))


def select_terms(terms: list[str], counts: dict[str, int], max_matches: int) -> list[str]:
    """The rarest `terms` whose chunk counts add up to at most `max_matches`, in query
    order. A phrase counts as its rarest token; a token not in `counts` as 0.

        >>> select_terms(["order", "pk 4471", "pk", "4471"],
        ...              {"order": 5000, "pk": 40, "4471": 1}, 100)
        ['pk 4471', 'pk', '4471']
    """
    cost = {t: min(counts.get(tok, 0) for tok in t.split()) for t in terms}
    chosen, total = set(), 0
    for term in sorted(terms, key=lambda t: cost[t]):
        if total + cost[term] > max_matches:
            break
        chosen.add(term)
        total += cost[term]
    return [t for t in terms if t in chosen]


class TermCounts:
    """How many chunks hold each token (FTS5's vocabulary), cached per token.

    A count lookup reads the token's whole posting list (~0.1 us a chunk), so
    counts are kept; they only choose which terms to search, so a stale count
    costs time or a little ranking quality, never a wrong result. The cache is
    dropped once the chunks added and removed since it was started reach
    `max(min_churn, live chunks * churn_share)`.
    Not thread-safe: used under the index's lock.
    """

    def __init__(self, lookup: Callable[[list[str]], dict[str, int]], *,
                 min_churn: int = 500, churn_share: float = 0.05, max_size: int = 200_000):
        self.lookup = lookup
        self.min_churn, self.churn_share, self.max_size = min_churn, churn_share, max_size
        self.counts: dict[str, int] = {}
        self.churn = 0

    def get(self, tokens: Iterable[str]) -> dict[str, int]:
        tokens = list(dict.fromkeys(tokens))
        missing = [t for t in tokens if t not in self.counts]
        if missing:
            if len(self.counts) + len(missing) > self.max_size:
                self.counts.clear()
            found = self.lookup(missing)
            self.counts.update({t: found.get(t, 0) for t in missing})
        return {t: self.counts[t] for t in tokens}

    def changed(self, chunks: int, live: int) -> None:
        """`chunks` were added or removed; `live` are left."""
        self.churn += chunks
        if self.churn >= max(self.min_churn, live * self.churn_share):
            self.counts.clear()
            self.churn = 0


@dataclass(frozen=True)
class Fused:
    id: int
    fused_score: float
    dense_rank: int | None  # 1-based; None: not among the dense candidates
    lexical_rank: int | None


def rrf(dense: list[int], lexical: list[int], *, k: int = 60,
        lexical_weight: float = 1.0) -> list[Fused]:
    """Reciprocal rank fusion of two rankings (ids, best first), best first.

    score(id) = 1 / (k + dense rank) + lexical_weight / (k + lexical rank), a
    ranking the id is absent from adding nothing. Ties go to the better dense
    rank, then the better lexical rank.

        >>> [f.id for f in rrf([1, 2, 3], [3, 4])]
        [3, 1, 2, 4]
    """
    dense_rank = {i: r for r, i in enumerate(dense, 1)}
    lexical_rank = {i: r for r, i in enumerate(lexical, 1)}
    fused = []
    for i in dict.fromkeys([*dense, *lexical]):
        d, lx = dense_rank.get(i), lexical_rank.get(i)
        score = (1.0 / (k + d) if d else 0.0) + (lexical_weight / (k + lx) if lx else 0.0)
        fused.append(Fused(i, score, d, lx))
    missing = len(dense) + len(lexical) + 1
    fused.sort(key=lambda f: (-f.fused_score, f.dense_rank or missing,
                              f.lexical_rank or missing))
    return fused


__all__ = ["MAX_TERMS", "STOP_WORDS", "Fused", "TermCounts", "fts_match", "fts_query",
           "query_terms", "rrf", "select_terms"]
