"""Question candidates of an organisation (single, two-fact, bridges,
unanswerable) and their phrasing."""

from __future__ import annotations

import random
import re

from .answers import (
    _bridge_manager,
    _bridge_role,
    _bridge_staff,
    _bridge_title,
    _compare,
    _pair,
)
from .model import Cand, Fact, occurs
from .settings import SINGLES_SEARCHED
from .vocabulary import GENERIC_ROLES, GENERIC_UNKNOWN, INFORMAL, SITE_UNKNOWN


class Questions:
    """OrgWriter's fact checks, question candidates and phrasing."""

    def valid(self, f: Fact) -> bool:
        """Stated exactly once in each of its documents and, unless a name, nowhere else."""
        texts = {d.doc_id: d.text for d in self.docs}
        if not all(occurs(f.value, texts.get(d, "")) == 1 for d in f.docs):
            return False
        others = sum(occurs(f.value, t) for d, t in texts.items() if d not in f.docs)
        return not others or bool(f.tags & {"name", "role"})

    def check_facts(self) -> None:
        self.facts = [f for f in self.facts if self.valid(f)]
        self.cands = [c for c in self.cands if all(self.valid(x) for x in c.facts)]

    def make_candidates(self) -> None:
        r, k = self.rng, self.kind
        by_key = {f.key: f for f in self.facts}
        # Single facts: those near a distractor or an injected paragraph, then a sample.
        first = [f for f in self.facts
                 if "distractor" in f.tags or self.injected_doc in f.docs]
        rest = [f for f in self.facts if f not in first]
        singles = r.sample(first, min(len(first), 8))
        singles += r.sample(rest, min(len(rest), SINGLES_SEARCHED - len(singles)))
        for f in singles:
            self.cands.append(Cand("single", "", [f], tags=f.tags))
        # Two facts of sibling sites: both, or a comparison.
        for label in ["staff"] + [m[0] for m in k.metrics]:
            tag = f"metric:{label}"
            fs = [f for f in self.facts if tag in f.tags]
            if len(fs) >= 2:
                a, b = r.sample(fs, 2)
                sa, sb = a.key.split(":")[-1], b.key.split(":")[-1]
                low = label.lower()
                counted = label == "staff" or next(
                    (m[3] in ("{}", "{:,}") for m in k.metrics if m[0] == label), True)
                if r.random() < 0.5:
                    q = r.choice([f"How many {low} are there at {sa} and at {sb}?"
                                  if counted else f"What is the {low} at {sa} and at {sb}?",
                                  f"Compare {low} at {sa} and {sb}.",
                                  f"What are the figures for {low} at {sa} and {sb}?"])
                    if label == "staff":
                        q = r.choice([f"How many staff work at {sa} and at {sb}?",
                                      f"What's the headcount at {sa} and {sb}?"])
                    self.cands.append(Cand("pair", q, [a, b], compose=_pair))
                else:
                    q = r.choice([f"Which has more {low}, {sa} or {sb}?",
                                  f"Does {sa} or {sb} have more {low}?"])
                    if label == "staff":
                        q = f"Which site has more staff, {sa} or {sb}?"
                    self.cands.append(Cand("compare", q, [a, b], compose=_compare(label)))
        # Two unrelated facts asked together.
        plain = [f for f in self.facts if not f.tags & {"old"}]
        for _ in range(3):
            a, b = r.sample(plain, 2)
            if a.docs == b.docs:
                continue
            self.cands.append(Cand("pair", "", [a, b], compose=_pair))
        # Bridges: a site described by a fact of its page -> its manager, and back.
        for s in self.sites:
            m = by_key.get(f"manager:{s}")
            opened = by_key.get(f"opened:{s}")
            staff = by_key.get(f"staff:{s}")
            if m and opened:
                q = r.choice([f"Who manages the {k.site} that opened on {opened.value}?",
                              f"Who is the manager of the {k.site} opened on {opened.value}?"])
                self.cands.append(Cand("bridge", q, [opened, m], compose=_bridge_manager(s)))
            if m and staff:
                q = r.choice([f"How many staff work at the {k.site} managed by {m.value}?",
                              f"What is the headcount of the {k.site} run by {m.value}?"])
                self.cands.append(Cand("bridge", q, [m, staff], compose=_bridge_staff(s)))
        # Bridge: a role named in a policy/SLA/procedure -> the person holding it.
        role_facts = [f for f in self.facts if "role" in f.tags and not f.key.startswith("role:")]
        for f in r.sample(role_facts, min(3, len(role_facts))):
            holder = by_key.get(f"role:{f.value}")
            if holder:
                q = f.direct.replace("Who ", "Which person, by name, ", 1) \
                    if f.direct.startswith("Who ") else f.direct
                q = r.choice([q, f"{f.direct[:-1]}? Give me the person's name."])
                self.cands.append(Cand("bridge", q, [f, holder], compose=_bridge_role))
        # Apologies -> role of that person.
        if hasattr(self, "minutes_absent"):
            absent, role, date, _ = self.minutes_absent
            ap, holder = by_key.get("min:apologies"), by_key.get(f"role:{role}")
            if ap and holder:
                holder2 = Fact(holder.key + ":rev", role, holder.docs, "", "", "",
                               holder.tags, also=(absent,))
                q = f"What is the job title of the person who sent apologies to the {date} " \
                    "board meeting?"
                self.cands.append(Cand("bridge", q, [ap, holder2], compose=_bridge_title))
        # Unanswerable: roles nobody holds, sites that do not exist, generic unknowns.
        free_roles = [x for x in GENERIC_ROLES + list(k.roles) if x not in self.people]
        for role in r.sample(free_roles, min(2, len(free_roles))):
            self.cands.append(Cand("unanswerable", r.choice(
                [f"Who is @ORG's {role}?", f"Who is the {role} at @ORG?"]), [],
                tags=frozenset({"no-role"})))
        fake = self.place()
        metric = r.choice(k.metrics)
        self.cands.append(Cand("unanswerable", r.choice([
            f"How many staff work at the {fake} {k.site}?", f"When did the {fake} {k.site} open?",
            metric[4].replace("@S", f"the {fake} {k.site}")]), [], tags=frozenset({"no-site"})))
        for q in r.sample(GENERIC_UNKNOWN, 2):
            self.cands.append(Cand("unanswerable", q, [], tags=frozenset({"generic"})))
        s = r.choice(self.sites)
        self.cands.append(Cand("unanswerable", r.choice(SITE_UNKNOWN).replace(
            "@S", f"the {s} {k.site}"), [], tags=frozenset({"site-unknown"})))

    def org_ref(self) -> str:
        x = self.rng.random()
        return self.name if x < 0.55 else self.short

    def phrase(self, template: str, ref: str) -> str:
        owner = f"{ref}'" if ref.endswith("s") else f"{ref}'s"
        q = template.replace("@ORG's", owner).replace("@ORG", ref)
        if q.startswith("the "):
            q = q[0].upper() + q[1:]
        return q

    def question_for(self, c: Cand) -> tuple[str, str, list[Fact]]:
        """(question, org reference, facts) of a candidate, phrased at random."""
        r = self.rng
        ref = self.org_ref()
        if c.kind == "single":
            f = c.facts[0]
            style = r.random()
            q = f.direct if style < 0.45 else f.para
            q = self.phrase(q, ref)
            if style > 0.75:
                q = informal(r, q)
            return q, ref, c.facts
        if c.kind == "pair" and not c.question:
            a, b = c.facts
            q1 = self.phrase(a.direct, ref)
            q2 = self.phrase(b.para if r.random() < 0.4 else b.direct, ref)
            q = r.choice([f"{q1} And {q2[0].lower() + q2[1:]}", f"Two things: {q1} {q2}",
                          f"{q1[:-1]}, and {q2[0].lower() + q2[1:]}"])
            return q, ref, c.facts
        q = self.phrase(c.question, ref)
        if r.random() < 0.15:
            q = informal(r, q)
        return q, ref, c.facts


def informal(r: random.Random, q: str) -> str:
    body = q.rstrip("?. ")
    if not re.match(r"[A-Z][a-z]+ [A-Z]", body):  # keep a leading proper name capitalised
        body = body[0].lower() + body[1:]
    out = r.choice(INFORMAL).format(q=body)
    return out + ("?" if r.random() < 0.6 and not out.endswith(("thx", "pls")) else "")
