"""Answer composers: facts' values and markers -> answer text."""

from __future__ import annotations

import re


def fill(sentence: str, value: str, marker: str, ref: str) -> str:
    s = sentence.replace("@ORG", ref).replace("@V", value).replace("@C", marker)
    return s[0].upper() + s[1:]


def _pair(facts, markers, ref, rng):
    a, b = facts
    s1 = fill(a.sentence, a.value, markers[0], ref)
    s2 = fill(b.sentence, b.value, markers[1], ref)
    if s2.startswith(("The ", "It ", "A ", "An ")) and rng.random() < 0.5:
        return f"{s1[:-1]}, and {s2[0].lower() + s2[1:]}"
    if re.match(r"[A-Z][a-z]+ has", s2) and re.match(r"[A-Z][a-z]+ has", s1) and \
            rng.random() < 0.5:  # sibling sites: "A has 12 ... [1], and B has 9 ... [3]."
        return f"{s1[:-1]}, and {s2}"
    return f"{s1} {s2}"


def _compare(label):
    def compose(facts, markers, ref, rng):
        (a, ma), (b, mb) = zip(facts, markers)
        va, vb = (int(re.sub(r"[^\d]", "", x.value)) for x in (a, b))
        sa, sb = a.key.split(":")[-1], b.key.split(":")[-1]
        if va == vb:
            return f"They are equal: {a.value} at {sa} {ma} and {b.value} at {sb} {mb}."
        (wv, ws, wm), (lv, ls, lm) = sorted([(a.value, sa, ma), (b.value, sb, mb)],
                                            key=lambda t: -int(re.sub(r"[^\d]", "", t[0])))
        return f"{ws} has more {label.lower()}: {wv} {wm} against {lv} at {ls} {lm}."
    return compose


def _change(facts, markers, ref, rng):
    (old, mo), (cur, mc) = zip(facts, markers)
    return rng.choice([(f"The current policy says {cur.value} {mc}; the superseded version "
                       f"said {old.value} {mo}."),
                       f"It changed from {old.value} {mo} to {cur.value} {mc}."])


def _bridge_manager(site):
    def compose(facts, markers, ref, rng):
        (opened, mo), (m, mm) = zip(facts, markers)
        return f"{site} opened on {opened.value} {mo} and is managed by {m.value} {mm}."
    return compose


def _bridge_staff(site):
    def compose(facts, markers, ref, rng):
        (m, mm), (staff, ms) = zip(facts, markers)
        return f"{m.value} manages {site} {mm}, which has {staff.value} staff {ms}."
    return compose


def _bridge_role(facts, markers, ref, rng):
    (f, mf), (holder, mh) = zip(facts, markers)
    return f"It is {holder.value} {mh}, the {f.value} {mf}."


def _bridge_title(facts, markers, ref, rng):
    (ap, ma), (role, mr) = zip(facts, markers)
    return f"{ap.value} sent apologies {ma}; they are the {role.value} {mr}."
