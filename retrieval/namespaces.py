"""Where a filtered API key's documents live in a shared index: its own doc_id space.

Two teams sharing an index may both upload `faq.md` (doc_id `faq`). A key whose filter
pins fields to values (`{"tenant": "a"}`) writes, reads and deletes its doc_ids inside a
namespace named by those fields: `faq` is stored as `tenant=a/faq`. Client doc_ids cannot
hold a slash, so no key can name another's stored id; the key sees its own ids
everywhere (search hits, listings, reads, citations) and filters by them (`doc_id`
conditions are translated). Keys whose filters pin the same fields to the same values
share a namespace. A filter that pins nothing has none: its ids are the stored ids, and a
doc_id held outside its filter is refused (`DocumentIdTakenError`).

    >>> ns = Namespace({"tenant": "a"})
    >>> ns.stored("faq"), ns.client("tenant=a/faq")
    ('tenant=a/faq', 'faq')
"""

from __future__ import annotations

from typing import Any

from retrieval.filters import equalities

__all__ = ["Namespace"]


class Namespace:
    def __init__(self, owner: dict[str, Any] | None):
        pinned = equalities(owner)
        self.prefix = ("&".join(f"{k}={pinned[k]}" for k in sorted(pinned)) + "/"
                       if pinned else "")

    def stored(self, doc_id: str) -> str:
        return self.prefix + doc_id

    def client(self, stored: str) -> str:
        """The id the key knows (a document written for it without the namespace, e.g. by
        an admin, keeps its stored id)."""
        if self.prefix and stored.startswith(self.prefix):
            return stored[len(self.prefix):]
        return stored

    def record(self, row: dict[str, Any]) -> dict[str, Any]:
        """A hit or document record with the key's doc_id."""
        return {**row, "doc_id": self.client(row["doc_id"])} if self.prefix else row

    def filter(self, spec: Any) -> Any:
        """A request's filter with its `doc_id` conditions on stored ids (anything
        malformed passes unchanged, for compile_filter to name)."""
        if not self.prefix or not isinstance(spec, dict):
            return spec
        out: dict[str, Any] = {}
        for key, cond in spec.items():
            if key == "$and" and isinstance(cond, list):
                out[key] = [self.filter(sub) for sub in cond]
            elif key == "doc_id":
                out[key] = self._condition(cond)
            else:
                out[key] = cond
        return out

    def _condition(self, cond: Any) -> Any:
        if isinstance(cond, str):
            return self.stored(cond)
        if not isinstance(cond, dict):
            return cond
        return {op: ([self.stored(v) if isinstance(v, str) else v for v in value]
                     if isinstance(value, list) else
                     self.stored(value) if isinstance(value, str) else value)
                for op, value in cond.items()}
