"""The documents every organisation has: overview, leadership, site pages and
policies (current and superseded versions)."""

from __future__ import annotations

from .answers import _change
from .model import Cand, Fact, slug
from .policies import P
from .vocabulary import ASSEMBLY, HOURS, MONTHS, PROJECTS


class CoreDocs:
    """OrgWriter's overview, leadership, site pages and policies."""

    def overview(self) -> None:
        r, k = self.rng, self.kind
        founded = self.date(1968, 2019)
        founders = [self.person() for _ in range(r.choice([1, 2, 2, 3]))]
        founders_s = founders[0] if len(founders) == 1 else \
            ", ".join(founders[:-1]) + " and " + founders[-1]
        reg = (f"{self.code}-{r.choice(['CO', 'RS', 'LT', 'CH', 'RN', 'GB'])}-"
               f"{r.randint(100, 9999):04d}")
        hq = self.address()
        staff = self.fresh(lambda: f"{r.randint(40, 900):,}")
        doc_id = r.choice(["company-overview", "about-us", "organisation-overview", "who-we-are",
                           f"about-{slug(self.name)}"])
        site_names = ", ".join(f"{s}" for s in self.sites[:-1]) + f" and {self.sites[-1]}"
        intro = r.choice([
            f"{self.name} was founded on {founded} by {founders_s}.",
            f"{self.name} was set up on {founded}. Its founders were {founders_s}.",
            f"Founded on {founded} by {founders_s}, {self.name} has grown steadily since.",
        ])
        parts = [f"# About {self.name}", "## Who we are",
                 f"{intro} Its {k.reg} is {reg}. {self.filler('who')}",
                 "## Where we work",
                 (f"The head office is at {hq}. {self.short.capitalize()} runs "
                 f"{len(self.sites)} {k.site}{'s' if len(self.sites) > 1 else ''}: {site_names}. "
                 f"{self.filler('where')}"),
                 "## People",
                 (f"{self.name} employs {staff} {k.staff} across all sites. "
                 f"{self.filler('people')}")]
        if k.fee:
            fee = self.money(k.fee[1], k.fee[2])
            parts.append(f"Anyone over 16 can join. Membership costs a one-off {k.fee[0]} of "
                         f"{fee}, which is refunded on leaving.")
            self.fact("fee", fee, doc_id, f"How much is the {k.fee[0]} at @ORG?",
                      "What does it cost to become a member of @ORG?",
                      f"The {k.fee[0]} is @V @C.", subject=f"the {k.fee[0]}")
        mission = r.choice([("We aim to serve our community with reliable, fairly priced "
                            "services."), ("Our mission is to do practical work well and to "
                            "reinvest what we earn."), ("We put people before profit and "
                            "publish our results every year.")])
        parts += ["## Mission", self.inject(mission)]
        self.add_doc(doc_id, "\n\n".join(parts))
        self.fact("founded", founded, doc_id, "When was @ORG founded?",
                  "How long has @ORG been around - what was its start date?",
                  "@ORG was founded on @V @C.", subject="the founding date")
        self.fact("founders", founders_s, doc_id, "Who founded @ORG?",
                  "Which people started @ORG?", "@ORG was founded by @V @C.",
                  tags={"name"}, subject="the founders")
        self.fact("reg", reg, doc_id, f"What is @ORG's {k.reg}?",
                  "Under which official registration code is @ORG listed?",
                  f"The {k.reg} is @V @C.", subject=f"the {k.reg}")
        self.fact("hq", hq, doc_id, "Where is @ORG's head office?",
                  "What's the address of the main office of @ORG?",
                  "The head office is at @V @C.", subject="the head office")
        self.fact("staff", staff, doc_id, f"How many {k.staff} does @ORG employ in total?",
                  "What is the total headcount of @ORG?", f"@ORG employs @V {k.staff} @C.",
                  subject="the total headcount")

    def leadership(self) -> None:
        r = self.rng
        doc_id = r.choice(["leadership-team", "leadership", "management-team", "our-people",
                           "governance-and-leadership"])
        meets = self.fresh(lambda: f"{r.choice([4, 6, 8, 10, 11])} times a year")
        board_size = self.fresh(lambda: str(r.randint(5, 12)))
        board = (f"The board has {board_size} members and meets {meets}. It is chaired by "
                 f"{self.chair}, who was elected in {r.randint(2012, 2023)}. "
                 f"{self.filler('board')}")
        items = list(self.people.items())
        r.shuffle(items)
        execs = "\n".join(f"- {name}, {role}. Joined in {r.randint(2001, 2023)}."
                          for role, name in items)
        managers = "\n".join(f"- {s} {self.kind.site}: {self.site_manager[s]}"
                             for s in self.sites)
        text = "\n\n".join([f"# Leadership of {self.name}", "## Board", board,
                             "## Executive team", self.filler("exec", 1, 1), execs,
                             "## Site managers", managers])
        self.add_doc(doc_id, text)
        self.fact("chair", self.chair, doc_id, "Who chairs the board of @ORG?",
                  "Who leads @ORG's board?", "The board is chaired by @V @C.", tags={"name"},
                  subject="the board chair")
        self.fact("meets", meets, doc_id, "How often does @ORG's board meet?",
                  "How many board meetings does @ORG hold per year?",
                  "The board meets @V @C.", subject="how often the board meets")
        self.fact("board_size", board_size, doc_id, "How many members does @ORG's board have?",
                  "How many people sit on the board of @ORG?",
                  "The board has @V members @C.", subject="the board size")
        for role, name in self.people.items():
            self.fact(f"role:{role}", name, doc_id, f"Who is @ORG's {role}?",
                      f"Who holds the {role} job at @ORG?", f"The {role} is @V @C.",
                      tags={"name", "role"}, also=(role,), subject=f"the {role}")
        for s, name in self.site_manager.items():
            site = f"{s} {self.kind.site}"
            self.fact(f"manager:{s}", name, doc_id, f"Who manages the {site}?",
                      f"Who is in charge of the {site}?", f"The {site} is managed by @V @C.",
                      tags={"name", "manager"}, also=(s,), subject=f"the manager of {s}")
        self.leadership_doc = doc_id

    def site_pages(self) -> None:
        r, k = self.rng, self.kind
        self.site_docs = {}
        sections = r.choice([("Site profile", "Operations", "Facilities"),
                             ("Overview", "Day-to-day running", "Buildings and facilities"),
                             ("Profile", "Operations", "On site")])
        for i, s in enumerate(self.sites, 1):
            code = f"{self.code}-{i:02d}"
            title = f"{s} {k.site.title()}"
            doc_id = f"site-{slug(s)}"
            opened = self.date(1975, 2023)
            addr = self.address()
            staff = self.fresh(lambda: str(r.randint(8, 160)))
            hours = r.choice(HOURS)
            assembly = r.choice(ASSEMBLY)
            metrics = []
            for m in k.metrics:
                label, lo, hi, fmt = m[:4]
                v = self.fresh(lambda fmt=fmt, lo=lo, hi=hi: fmt.format(r.randint(lo, hi)))
                metrics.append((m, v))
            bullets = [f"- Staff: {staff}"] + [f"- {m[0]}: {v}" for m, v in metrics]
            project = r.choice(PROJECTS)
            budget = self.money(20000, 900000)
            due = f"{r.choice(MONTHS)} {r.randint(2025, 2027)}"
            text = "\n\n".join([
                f"# {title} ({code})", f"## {sections[0]}",
                (f"{title} opened on {opened} at {addr}. Its site code is {code}. "
                f"{self.filler('profile')}"),
                "\n".join(bullets), f"## {sections[1]}",
                self.inject(f"The site is open {hours}. Deliveries are accepted until one hour "
                            f"before closing. {self.filler('ops', 2, 3)}"),
                f"## {sections[2]}",
                (f"The emergency assembly point is {assembly}. In {r.randint(2022, 2024)} the "
                f"board approved {project} for {s}, with a budget of {budget}; completion is "
                f"expected in {due}. {self.filler('facilities')}")])
            self.add_doc(doc_id, text)
            self.site_docs[s] = doc_id
            S = f"the {s} {k.site}"
            self.fact(f"opened:{s}", opened, doc_id, f"When did {S} open?",
                      f"Since when has {S} been operating?",
                      f"{S[0].upper() + S[1:]} opened on @V @C.",
                      tags={"site"}, subject=f"the opening date of {s}")
            self.fact(f"addr:{s}", addr, doc_id, f"What is the address of {S}?",
                      f"Where exactly is {S} located?", f"{S[0].upper() + S[1:]} is at @V @C.",
                      tags={"site"}, subject=f"the address of {s}")
            self.fact(f"code:{s}", code, doc_id, f"What is the site code of {S}?",
                      f"Which internal code identifies {S}?", "The site code is @V @C.",
                      tags={"site"}, subject=f"the site code of {s}")
            self.fact(f"staff:{s}", staff, doc_id, f"How many staff work at {S}?",
                      f"What's the headcount at {S}?", f"{s} has @V staff @C.",
                      tags={"site", "metric:staff"}, subject=f"staff at {s}")
            self.fact(f"hours:{s}", hours, doc_id, f"What are the opening hours of {S}?",
                      f"When can I visit {S}?", f"{S[0].upper() + S[1:]} is open @V @C.",
                      tags={"site"}, subject=f"the opening hours of {s}")
            self.fact(f"assembly:{s}", assembly, doc_id,
                      f"Where is the emergency assembly point at {S}?",
                      f"Where do people gather at {S} if there is a fire alarm?",
                      "The assembly point is @V @C.", tags={"site"},
                      subject=f"the assembly point at {s}")
            self.fact(f"budget:{s}", budget, doc_id, f"What budget was approved for {project} "
                      f"at {s}?", f"How much money was set aside for {project} at {s}?",
                      f"The budget for {project} is @V @C.", tags={"site"},
                      subject=f"the budget for {project} at {s}")
            for m, v in metrics:
                label, *_, direct, para, sentence = m
                self.fact(f"metric:{label}:{s}", v, doc_id, direct.replace("@S", S),
                          para.replace("@S", S), sentence.replace("@S", s),
                          tags={"site", f"metric:{label}"}, subject=f"{label.lower()} at {s}")

    def policies(self) -> None:
        r = self.rng
        self.policy_docs = {}
        for topic in self.topics:
            title, sections, fields = P[topic]
            chosen = r.sample(fields, min(len(fields), r.randint(4, 5)))
            missing = [f for f in fields if f not in chosen]
            old_only = missing.pop(0) if missing and r.random() < 0.8 else None
            superseded = r.random() < 0.75
            major = r.randint(2, 5)
            new_v, old_v = f"{major}.{r.randint(0, 3)}", f"{major - 1}.{r.randint(1, 6)}"
            eff = self.date(2023, 2024)
            doc_id = f"{topic}-policy" if r.random() < 0.6 else slug(title)
            values = {f[0]: self.policy_value(f[2]) for f in chosen}
            text = self.policy_text(title, sections, chosen, values, topic,
                                    f"Version {new_v}, effective {eff}. Owner: the "
                                    f"{self.any_role()}." + (f" This version replaces version "
                                                             f"{old_v}." if superseded else ""))
            self.add_doc(doc_id, text)
            self.policy_docs[topic] = doc_id
            for key, _, spec, direct, para, sentence in chosen:
                tags = {"policy", f"policy:{topic}"}
                if spec == "role":
                    tags.add("role")
                self.fact(f"policy:{topic}:{key}", values[key], doc_id, self.localize(direct),
                          self.localize(para), self.localize(sentence), tags=tags,
                          subject=f"{title.lower()}: {key}")
            for key, _, spec, direct, *_ in missing:
                self.cands.append(Cand("unanswerable", self.localize(direct), [],
                                       tags=frozenset({"missing"})))
            if superseded:
                old_fields = [f for f in chosen if r.random() < 0.85]
                if old_only:
                    old_fields.append(old_only)
                old_values = {}
                for f in old_fields:
                    old_values[f[0]] = self.policy_value(f[2], avoid=values.get(f[0]))
                old_doc = f"{doc_id}-{int(eff[-4:]) - r.randint(1, 3)}"
                note = r.choice([
                    (f"> Superseded: this version was replaced by version {new_v} on {eff}. "
                    f"It is kept for reference only; do not apply these rules."),
                    f"Status: SUPERSEDED by version {new_v} (effective {eff}). Archived copy.",
                    f"**This policy is no longer in force.** Version {new_v} replaced it on {eff}.",
                ])
                text = self.policy_text(f"{title} (version {old_v})", sections, old_fields,
                                        old_values, topic, note + f"\n\nVersion {old_v}, "
                                        f"effective {self.date(2017, 2021)}.")
                self.add_doc(old_doc, text)
                self.policy_docs[topic + ":old"] = old_doc
                for f in old_fields:
                    key = f[0]
                    if key in values and old_values[key] != values[key]:
                        cur = next(x for x in self.facts if x.key == f"policy:{topic}:{key}")
                        cur.tags = cur.tags | {"distractor"}
                        old = Fact(f"policy-old:{topic}:{key}", old_values[key], (old_doc,),
                                   "", "", "", frozenset({"old"}))
                        direct = self.localize(f[3])
                        q = r.choice([
                            f"{direct[:-1]}, and what was it in the superseded version {old_v}?",
                            f"{direct} Has that changed since version {old_v}?",
                            f"{direct} Compare the current rule with the old version {old_v}."])
                        self.cands.append(Cand("change", q, [old, cur], compose=_change,
                                               tags=frozenset({"distractor"})))
                if old_only:
                    key, _, spec, direct, para, sentence = old_only
                    direct, para = self.localize(direct), self.localize(para)
                    lowered = direct[0].lower() + direct[1:]
                    q = r.choice([f"Under the current {title.lower()}, {lowered}",
                                  f"{para} (current rules please)",
                                  f"According to the policy now in force, {lowered}"])
                    self.cands.append(Cand("unanswerable", q, [],
                                           tags=frozenset({"superseded-only", "distractor"})))

    def policy_value(self, spec: str, avoid: str | None = None) -> str:
        if spec == "role":
            roles = list(self.people)
            if avoid in roles and len(roles) > 1:
                roles.remove(avoid)
            return self.rng.choice(roles)
        for _ in range(50):
            v = self.value(spec)
            if v != avoid:
                return v
        return v

    def policy_text(self, title, sections, fields, values, topic, header) -> str:
        r = self.rng
        half = (len(fields) + 1) // 2
        groups = [fields[:half], fields[half:]]
        parts = [f"# {title}", header, "## Purpose",
                 (f"This policy sets out the rules on {title.lower().replace(' policy', '')} "
                 f"for everyone working for {self.name}. Managers are responsible for "
                 "applying it consistently.")]
        for name, group in zip(sections, groups):
            if not group:
                continue
            sentences = [f[1].replace("@V", values[f[0]]) for f in group]
            sentences = [self.localize(s) for s in sentences]
            parts.append(f"## {name}")
            if r.random() < 0.5:
                parts.append(" ".join(sentences) + " " + self.filler("policy"))
            else:
                parts.append(self.filler("policy", 1, 1) + "\n\n" +
                             "\n".join(f"- {s}" for s in sentences))
        parts += ["## Exceptions", ("Exceptions must be agreed in writing in advance and are "
                  "recorded by the finance team.")]
        return "\n\n".join(parts)

    def localize(self, text: str) -> str:
        if self.us:
            text = text.replace("per kilometre", "per mile").replace("kilometres", "miles")
        return text

    def any_role(self) -> str:
        return self.rng.choice(list(self.people))
