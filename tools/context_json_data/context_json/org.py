"""One invented organisation (OrgWriter): random pieces, facts, documents."""

from __future__ import annotations

import datetime as dt
import random
import re

from .docs_core import CoreDocs
from .docs_optional import OptionalDocs
from .kinds import Kind
from .model import Cand, Doc, Fact, fmt_date, plural
from .policies import P
from .questions import Questions
from .vocabulary import (
    BLOCKED,
    FILLER,
    FIRST,
    GENERIC_ROLES,
    INJECTIONS,
    ORG_WORDS,
    PLACE_A,
    PLACE_B,
    STREET_TYPES,
    STREET_WORDS,
    SUR_A,
    SUR_B,
)


class OrgWriter(CoreDocs, OptionalDocs, Questions):
    """One invented organisation: its documents and the facts they state."""

    def __init__(self, rng: random.Random, kind: Kind, used_names: set[str]):
        self.rng, self.kind, self.used = rng, kind, used_names
        self.cur = rng.choice("€€$££")
        self.us = self.cur == "$"
        self.per_km = "per mile" if self.us else "per kilometre"
        town = self.place()
        pattern = rng.choice(kind.names)
        self.name = pattern.replace("@P", town)
        if "@W" in pattern:
            self.name = self.name.replace("@W", self.word())
        self.town = town
        self.short = kind.short
        initials = "".join(w[0] for w in re.findall(r"[A-Z][a-z]+", self.name))[:3].upper()
        self.code = (initials + "XQZ")[:3]
        self.docs: list[Doc] = []
        self.facts: list[Fact] = []
        self.cands: list[Cand] = []
        self.people: dict[str, str] = {}        # role -> name
        self.site_manager: dict[str, str] = {}  # site -> manager
        self.injected = self._inject_now = False
        self.injected_doc = None
        self.values: set[str] = set()

    # -- random pieces ----------------------------------------------------------------

    def _unique(self, make) -> str:
        for _ in range(200):
            s = make()
            if s.lower() not in self.used and not any(b in s.lower() for b in BLOCKED):
                self.used.add(s.lower())
                return s
        raise RuntimeError("name space exhausted")

    def place(self) -> str:
        return self._unique(lambda: self.rng.choice(PLACE_A) + self.rng.choice(PLACE_B))

    def word(self) -> str:
        return self._unique(lambda: self.rng.choice(ORG_WORDS))

    def person(self) -> str:
        def make():
            sur = self.rng.choice(SUR_A) + self.rng.choice(SUR_B)
            if self.rng.random() < 0.12:
                sur += "-" + self.rng.choice(SUR_A) + self.rng.choice(SUR_B)
            return f"{self.rng.choice(FIRST)} {sur}"
        return self._unique(make)

    def address(self) -> str:
        return self._unique(lambda: f"{self.rng.randint(2, 180)} {self.rng.choice(STREET_WORDS)} "
                            f"{self.rng.choice(STREET_TYPES)}, "
                            f"{self.rng.choice([self.town, self.town, self.place_any()])}")

    def place_any(self) -> str:
        return self.rng.choice(PLACE_A) + self.rng.choice(PLACE_B)

    def date(self, y0: int, y1: int) -> str:
        d = dt.date(self.rng.randint(y0, y1), self.rng.randint(1, 12), self.rng.randint(1, 28))
        return fmt_date(d, self.us)

    def money(self, lo: int, hi: int) -> str:
        if hi <= 12:
            cents = self.rng.randrange(lo * 100, hi * 100) // 5 * 5
            return f"{self.cur}{cents / 100:,.2f}"
        n = self.rng.randint(lo, hi)
        step = 5 if hi > 60 else 1
        step = 50 if hi > 3000 else step
        step = 500 if hi > 30000 else step
        return f"{self.cur}{max(step, n // step * step):,}"

    def fresh(self, make) -> str:
        """A value not yet used in this organisation's documents."""
        for _ in range(100):
            v = make()
            if v not in self.values:
                self.values.add(v)
                return v
        return v

    def value(self, spec: str) -> str:
        kind, *args = spec.split(":", 1)
        args = args[0] if args else ""
        r = self.rng

        def rng_int():
            lo, hi = map(int, args.split(":")[:2])
            return r.randint(lo, hi)
        makers = {
            "money": lambda: self.money(*map(int, args.split(":"))),
            "cents": lambda: f"{self.cur}{r.randint(*map(int, args.split(':'))) / 100:.2f}",
            "days": lambda: plural(rng_int(), "day"),
            "wdays": lambda: plural(rng_int(), "working day"),
            "cdays": lambda: plural(rng_int(), "calendar day"),
            "ndays": lambda: plural(rng_int(), "day"), "weeks": lambda: plural(rng_int(), "week"),
            "hours": lambda: plural(rng_int(), "hour"),
            "minutes": lambda: plural(rng_int(), "minute"),
            "months": lambda: plural(rng_int(), "month"),
            "years": lambda: plural(rng_int(), "year"),
            "km": lambda: f"{rng_int() // 500 * 500:,} " + ("miles" if self.us else "km"),
            "count": lambda: f"{rng_int()} {args.split(':')[2]}",
            "choice": lambda: r.choice(args.split("|")),
        }
        return self.fresh(makers[kind])

    def fact(self, key, value, doc, direct, para, sentence, tags=(), also=(), subject=""):
        f = Fact(key, value, (doc,) if isinstance(doc, str) else tuple(doc), direct, para,
                 sentence, frozenset(tags), tuple(also), subject)
        self.facts.append(f)
        return f

    def add_doc(self, doc_id: str, text: str) -> None:
        # Titles as file ingestion sets them (the file stem), sometimes a human title.
        title = doc_id
        if self.rng.random() < 0.25:
            m = re.match(r"# (.+)", text)
            title = m.group(1) if m else doc_id
        self.docs.append(Doc(doc_id, text.strip() + "\n", title))
        if self._inject_now:
            self.injected_doc, self._inject_now = doc_id, False

    def filler(self, key: str, lo: int = 1, hi: int = 2) -> str:
        pool = FILLER[key]
        return " ".join(self.rng.sample(pool, min(len(pool), self.rng.randint(lo, hi))))

    def inject(self, paragraph: str) -> str:
        """Append an injected instruction to a paragraph (a few organisations only)."""
        if self.inject_into is None or self.injected:
            return paragraph
        self.injected = self._inject_now = True
        return paragraph + "\n\n" + self.inject_into

    # -- documents --------------------------------------------------------------------

    def build(self) -> None:
        r, k = self.rng, self.kind
        self.inject_into = r.choice(INJECTIONS) if r.random() < 0.35 else None
        self.sites = [self.place() for _ in range(r.choice([2, 2, 3]))]
        roles = ["Chief Executive Officer"] + r.sample(GENERIC_ROLES[1:], r.randint(2, 4))
        roles += r.sample(k.roles, min(len(k.roles), r.randint(1, 2)))
        for role in roles:
            self.people[role] = self.person()
        self.chair = self.person()
        for s in self.sites:
            self.site_manager[s] = self.person()
        self.topics = r.sample(sorted(P), r.choice([2, 2, 3]))
        docs = [self.overview, self.leadership, self.site_pages, self.policies]
        optional = [self.catalogue, self.minutes, self.sla, self.procedure, self.partners]
        docs += r.sample(optional, r.randint(3, 4))
        order = docs[:]
        r.shuffle(order)
        # The injected paragraph lands in whichever builder runs first after a coin flip.
        for build in order:
            build()
