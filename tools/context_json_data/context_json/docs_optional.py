"""The documents an organisation may have: price list (and its draft), board
minutes, SLA, procedure, partners."""

from __future__ import annotations

from .model import Cand, plural, slug
from .vocabulary import (
    APPOINTED_ROLES,
    CHANGES,
    HOURS,
    ORG_WORDS,
    PARTNER_SUFFIXES,
    PROJECTS,
    TASKS,
)


class OptionalDocs:
    """OrgWriter's catalogue, minutes, SLA, procedure and partners."""

    def catalogue(self) -> None:
        r, k = self.rng, self.kind
        year = r.randint(2024, 2025)
        items = r.sample(k.products, min(len(k.products), r.randint(4, 5)))
        spare = [p for p in k.products if p not in items]
        draft = r.random() < 0.6
        doc_id = r.choice([f"price-list-{year}", f"product-catalogue-{year}", "price-list",
                           "catalogue"])
        prices, codes = {}, {}
        for name, lo, hi, unit in items:
            prices[name] = self.fresh(lambda lo=lo, hi=hi: self.money(lo, hi))
            initials = "".join(w[0] for w in name.split()[:2]).upper()
            codes[name] = self.fresh(
                lambda initials=initials: f"{self.code}-{initials}-{r.randint(10, 99)}")
        min_order = self.fresh(lambda: self.money(20, 150))
        pay_days = self.fresh(lambda: f"{r.choice([14, 21, 28, 30, 45])} days")
        discount = self.fresh(lambda: f"{r.randint(3, 20)}%")

        def text(title, note, its, pr, mo, pdays, disc):
            lines = [f"# {title}"] + ([note] if note else []) + ["## Prices"]
            lines.append("\n".join(f"- {n} ({codes.get(n, '') or 'new'}): {pr[n]} {u}"
                                   for n, _, _, u in its))
            lines += ["## Terms",
                      f"Orders below {mo} are not accepted. Invoices are payable within "
                      f"{pdays}. Members and repeat customers receive a {disc} discount. "
                      + self.filler("catalogue")]
            return "\n\n".join(lines)

        self.add_doc(doc_id, text(f"Price List {year}", r.choice(
            ["", f"Approved by the board on {self.date(year - 1, year - 1)}. Prices include tax."]),
            items, prices, min_order, pay_days, discount))
        self.catalogue_doc = doc_id
        tags = {"catalogue"}
        if draft:
            tags.add("distractor")
        for name, lo, hi, unit in items:
            low = name[0].lower() + name[1:]
            self.fact(f"price:{name}", prices[name], doc_id,
                      f"What is the price of the {low} at @ORG?",
                      f"How much do I pay for the {low}?",
                      f"The {low} costs @V {unit} @C.", tags=tags, subject=f"the price of {name}")
            if not draft:
                self.fact(f"code:{name}", codes[name], doc_id,
                          f"What is the product code of the {low}?",
                          f"Which code do I use to order the {low}?",
                          "The code is @V @C.", tags={"catalogue"}, subject=f"the code of {name}")
        self.fact("min_order", min_order, doc_id, "What is the minimum order value?",
                  "What's the smallest order @ORG will accept?",
                  "The minimum order is @V @C.", tags=tags, subject="the minimum order")
        self.fact("pay_days", pay_days, doc_id, "How long do customers have to pay an invoice?",
                  "What are the payment terms on invoices from @ORG?",
                  "Invoices are payable within @V @C.", tags=tags, subject="the payment terms")
        self.fact("discount", discount, doc_id,
                  "What discount do members and repeat customers get?",
                  "How much off do regular customers get?",
                  "The discount is @V @C.", tags=tags, subject="the member discount")
        if spare:
            name = spare[0][0]
            self.cands.append(Cand("unanswerable", f"What is the price of the "
                                   f"{name[0].lower() + name[1:]}?", [],
                                   tags=frozenset({"not-listed"})))
        if draft:
            d_prices = {n: self.fresh(lambda lo=lo, hi=hi: self.money(lo, hi))
                        for n, lo, hi, _ in items}
            d_items = list(items)
            if len(spare) > 1:
                extra = spare[1]
                d_items.append(extra)
                d_prices[extra[0]] = self.fresh(lambda: self.money(extra[1], extra[2]))
                name = extra[0]
                self.cands.append(Cand("unanswerable", r.choice(
                    [f"How much is the {name[0].lower() + name[1:]}?",
                     f"What's the price of the {name[0].lower() + name[1:]} at @ORG?"]), [],
                    tags=frozenset({"draft-only", "distractor"})))
            self.add_doc(f"{doc_id}-draft", text(
                f"Price List {year} (draft)", r.choice([
                    (f"Status: DRAFT prepared on {self.date(year - 1, year - 1)} for review. "
                    "Not approved; do not quote these prices."),
                    ("> Draft for discussion only. The approved price list replaces this "
                    "document.")]), d_items, d_prices, self.fresh(lambda: self.money(20, 150)),
                self.fresh(lambda: f"{r.choice([10, 15, 20, 60])} days"),
                self.fresh(lambda: f"{r.randint(3, 20)}%")))

    def minutes(self) -> None:
        r = self.rng
        date = self.date(2023, 2024)
        doc_id = f"board-minutes-{slug(date)}"
        present = r.sample(list(self.people.values()), min(3, len(self.people)))
        absent_role = r.choice([x for x in self.people if self.people[x] not in present])
        absent = self.people[absent_role]
        project, budget = r.choice(PROJECTS), self.money(15000, 600000)
        change, when = r.choice(CHANGES), self.date(2025, 2025)
        task, by = r.choice(TASKS), self.date(2025, 2025)
        owner = r.choice(present)
        new_role = r.choice(APPOINTED_ROLES)
        appointee = self.person()
        nxt = self.date(2025, 2025)
        text = "\n\n".join([
            f"# Board meeting minutes, {date}", "## Attendance",
            (f"Chair: {self.chair}. Present: {', '.join(present)}. Apologies: {absent}. "
            f"{self.filler('minutes')}"),
            "## Decisions",
            (f"- The board approved a budget of {budget} for {project}.\n"
            f"- The board agreed that {change} will take effect on {when}.\n"
            f"- {appointee} was appointed {new_role}."),
            "## Actions",
            self.inject(f"{owner} will {task} by {by}."),
            "## Next meeting",
            f"The next meeting will be held on {nxt} at the head office."])
        self.add_doc(doc_id, text)
        self.fact("min:budget", budget, doc_id,
                  f"How much did the board approve for {project} at its {date} meeting?",
                  f"What budget was signed off for {project}?",
                  f"The board approved @V for {project} @C.", subject=f"the budget for {project}")
        self.fact("min:change", when, doc_id, f"When does {change} take effect?",
                  f"From what date will {change} apply?",
                  f"{change.capitalize()} takes effect on @V @C.",
                  subject=f"the start date of {change}")
        self.fact("min:task", by, doc_id, f"By when must {owner} {task}?",
                  f"What is the deadline for the action to {task}?",
                  "The deadline is @V @C.", subject="the action deadline")
        self.fact("min:apologies", absent, doc_id,
                  f"Who sent apologies to the board meeting on {date}?",
                  f"Which executive missed the {date} board meeting?",
                  "@V sent apologies @C.", tags={"name"}, subject="who sent apologies")
        self.fact("min:appointed", appointee, doc_id, f"Who was appointed {new_role}?",
                  f"Who is @ORG's new {new_role}?", f"@V was appointed {new_role} @C.",
                  tags={"name"}, subject=f"the new {new_role}")
        self.fact("min:next", nxt, doc_id, f"When is the next board meeting after {date}?",
                  f"When will the board meet again after the {date} meeting?",
                  "The next meeting is on @V @C.", subject="the next meeting date")
        self.minutes_absent = (absent, absent_role, date, doc_id)

    def sla(self) -> None:
        r = self.rng
        doc_id = r.choice(["customer-support-sla", "service-level-agreement", "support-sla"])
        p1 = self.fresh(lambda: f"{r.choice([15, 20, 30, 45, 60])} minutes")
        p1fix = self.fresh(lambda: f"{r.choice([2, 4, 6, 8])} hours")
        p2 = self.fresh(lambda: f"{r.choice([2, 3, 4, 12])} hours")
        p3 = self.fresh(lambda: plural(r.choice([1, 2, 3, 5]), "working day"))
        uptime = self.fresh(
            lambda: f"{r.choice(['99.5', '99.9', '99.7', '99.8', '99.95', '98.5'])}%")
        credit = self.fresh(lambda: f"{r.randint(2, 10)}%")
        cap = self.fresh(lambda: f"{r.randint(20, 50)}%")
        hours = r.choice(HOURS)
        esc_role = self.any_role()
        esc = self.fresh(lambda: f"{r.choice([4, 8, 12, 24])} hours")
        text = "\n\n".join([
            "# Customer Support Service Level Agreement", "## Support hours",
            f"The support desk is staffed {hours}. Requests outside these hours are handled "
            "the next working day, except Priority 1. " + self.filler("sla"),
            "## Response targets",
            (f"- Priority 1 (service down): first response within {p1}, resolution within "
            f"{p1fix}\n- Priority 2 (degraded): first response within {p2}\n"
            f"- Priority 3 (question): first response within {p3}"),
            "## Availability and credits",
            self.inject(f"Monthly availability target: {uptime}. For each full percentage point "
                        f"below target the customer receives a service credit of {credit} of "
                        f"the monthly fee, capped at {cap}."),
            "## Escalation",
            f"A Priority 1 case not resolved within {esc} is escalated to the {esc_role}."])
        self.add_doc(doc_id, text)
        for key, v, d, p, s in [
            ("p1", p1, "What is the first-response target for Priority 1 cases?",
             "How fast do they get back to you when the service is down?",
             "Priority 1 cases get a first response within @V @C."),
            ("p1fix", p1fix, "What is the resolution target for Priority 1 cases?",
             "How quickly must an outage be fixed under the SLA?",
             "Priority 1 cases are resolved within @V @C."),
            ("p2", p2, "What is the response target for Priority 2 requests?",
             "How long do I wait for a reply if the service is just slow?",
             "Priority 2 requests get a response within @V @C."),
            ("p3", p3, "How quickly are Priority 3 questions answered?",
             "What is the response time for a simple question to support?",
             "Priority 3 questions get a response within @V @C."),
            ("uptime", uptime, "What is the monthly availability target in the SLA?",
             "How much uptime does @ORG promise each month?",
             "The availability target is @V @C."),
            ("credit", credit, "What service credit is paid per percentage point below target?",
             "How much money back do customers get when availability is missed?",
             "The credit is @V of the monthly fee per point @C."),
            ("cap", cap, "What is the cap on service credits?",
             "What is the most a customer can get back in credits?",
             "Credits are capped at @V @C."),
            ("esc", esc_role, "Who are unresolved Priority 1 cases escalated to?",
             "Who gets involved when an outage drags on?",
             "They are escalated to the @V @C."),
        ]:
            self.fact(f"sla:{key}", v, doc_id, d, p, s,
                      tags={"sla"} | ({"role"} if key == "esc" else set()), subject=f"SLA {key}")

    def procedure(self) -> None:
        r = self.rng
        what = r.choice(["Incident Reporting Procedure", "Data Breach Procedure",
                         "Complaints Handling Procedure", "Safety Incident Procedure"])
        doc_id = slug(what)
        within = self.fresh(lambda: plural(r.choice([1, 2, 4, 12, 24, 48, 72]), "hour"))
        form = self.fresh(lambda: f"{self.code}-F-{r.randint(10, 99)}")
        ext = self.fresh(lambda: f"extension {r.randint(2000, 8999)}")
        lead = self.any_role()
        invest = self.fresh(lambda: f"{r.randint(5, 30)} working days")
        keep = self.fresh(lambda: f"{r.randint(3, 12)} years")
        text = "\n\n".join([
            f"# {what}", "## Scope",
            f"This procedure applies to all staff, contractors and volunteers of {self.name}.",
            "## Reporting",
            self.inject(f"Report every case within {within} on form {form}. In an emergency, "
                        f"call the duty desk on {ext}. {self.filler('procedure')}"),
            "## Investigation",
            (f"The {lead} leads the investigation, which must be completed within {invest}. "
            "The outcome is shared with the person who reported the case."),
            "## Records",
            f"Reports and investigation notes are kept for {keep} and then destroyed."])
        self.add_doc(doc_id, text)
        low = what.lower()
        for key, v, d, p, s, tags in [
            ("within", within, f"How quickly must a case be reported under the {low}?",
             "What's the reporting deadline after something goes wrong?",
             "Cases must be reported within @V @C.", set()),
            ("form", form, f"Which form is used under the {low}?",
             "What form do I fill in to report a case?", "Use form @V @C.", set()),
            ("ext", ext, "What number do I call in an emergency to reach the duty desk?",
             "How do I reach the duty desk urgently?", "Call the duty desk on @V @C.", set()),
            ("lead", lead, f"Who leads investigations under the {low}?",
             "Who is in charge of looking into reported cases?",
             "The @V leads investigations @C.", {"role"}),
            ("invest", invest, "How long may an investigation take?",
             "What is the deadline for finishing an investigation?",
             "Investigations must finish within @V @C.", set()),
            ("keep", keep, "How long are incident records kept?",
             "What is the retention period for reports?", "Records are kept for @V @C.", set()),
        ]:
            self.fact(f"proc:{key}", v, doc_id, d, p, s, tags={"procedure"} | tags,
                      subject=f"procedure {key}")

    def partners(self) -> None:
        r = self.rng
        doc_id = r.choice(["partners-and-suppliers", "partnership-agreements", "key-suppliers"])
        things = r.sample(["cleaning services", "IT support", "electricity", ("insurance "
                           "brokerage"), "payroll services", "security guarding", ("waste "
                           "collection"), "laboratory consumables", "vehicle leasing",
                           "catering", "printing", "legal advice"], r.randint(2, 3))
        parts = [f"# Partners and suppliers of {self.name}"]
        for thing in things:
            partner = self._unique(lambda: f"{self.rng.choice(ORG_WORDS)} "
                                   f"{self.rng.choice(PARTNER_SUFFIXES)}")
            start = self.date(2015, 2024)
            value = self.money(8000, 400000)
            term = self.fresh(lambda: f"{r.randint(2, 7)}-year")
            notice = self.fresh(lambda: f"{r.randint(2, 6)} months'")
            parts += [f"## {partner}",
                      f"Since {start}, {partner} has provided {thing} under a {term} contract "
                      f"worth {value} a year. Either side may end it with {notice} notice. "
                      f"{self.filler('partners', 0, 1)}".rstrip()]
            self.fact(f"partner:{thing}", partner, doc_id, f"Which company provides {thing} "
                      "to @ORG?", f"Who is @ORG's supplier for {thing}?",
                      f"{thing.capitalize()} are provided by @V @C." if thing.endswith("s")
                      else f"{thing.capitalize()} is provided by @V @C.", tags={"name"},
                      subject=f"the {thing} supplier")
            self.fact(f"pvalue:{thing}", value, doc_id, f"How much is the {thing} contract "
                      "worth per year?", f"What does @ORG pay {partner} annually?",
                      "The contract is worth @V a year @C.", subject=f"the {thing} contract value")
            self.fact(f"pstart:{thing}", start, doc_id, f"When did {partner} start working "
                      "with @ORG?", f"Since when has {partner} been a supplier?",
                      f"{partner} has been a partner since @V @C.",
                      subject=f"the start of the {partner} contract")
