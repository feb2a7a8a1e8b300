"""Documents, facts, question candidates and small text helpers."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .vocabulary import MONTHS


@dataclass
class Doc:
    doc_id: str
    text: str
    title: str


@dataclass
class Fact:
    key: str
    value: str                  # the string found verbatim in the gold document
    docs: tuple[str, ...]       # documents that state it
    direct: str                 # questions; @ORG = the organisation
    para: str
    sentence: str               # answer sentence with @V (value) and @C (marker)
    tags: frozenset = frozenset()
    also: tuple[str, ...] = ()  # strings the cited source must also contain
    subject: str = ""           # what a two-fact question calls it


@dataclass
class Cand:
    kind: str                   # single | pair | compare | bridge | change | unanswerable
    question: str
    facts: list[Fact]
    compose: object = None      # markers -> answer text
    tags: frozenset = frozenset()


def occurs(value: str, text: str) -> int:
    """Occurrences of value in text that are not part of a longer number or word."""
    pattern = r"(?<![\w.,€$£])" + re.escape(value) + r"(?![\w]|[.,]\d)"
    return len(re.findall(pattern, text))


def fmt_date(d: dt.date, us: bool) -> str:
    return f"{MONTHS[d.month - 1]} {d.day}, {d.year}" if us else \
        f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def plural(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("s" if n != 1 else "")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
