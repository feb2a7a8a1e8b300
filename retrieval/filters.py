"""Metadata filters for search, compiled to SQL over the document store.

    {"team": "infra"}                          equality
    {"year": {"$gte": 2020, "$lt": 2025}}      comparisons: $eq $ne $gt $gte $lt $lte
    {"lang": {"$in": ["en", "de"]}}            membership: $in $nin
    {"doc_id": {"$in": ["a", "b"]}}            doc_id and title are fields too
    {"$and": [{"team": "infra"}, {...}]}       every filter of the list

Several keys are ANDed. Anything else raises InvalidInputError naming the filter key.
There is no `$or`: a filter can only narrow, so an API key's own filter (serving.auth)
ANDed with a request's (`scoped`) can never be widened by the request.

`matches` evaluates a filter on one document's fields in Python, with the SQL's
meaning (a missing field satisfies no condition, as SQL's NULL satisfies none).
"""

from __future__ import annotations

import re
from typing import Any

from retrieval.errors import InvalidInputError

__all__ = ["MAX_IN", "MAX_AND", "compile_filter", "scoped", "matches", "equalities"]

_FIELD_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
_OPS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_TOP_LEVEL = {"doc_id": "d.doc_id", "title": "d.title"}
MAX_IN = 1000
MAX_AND = 16


def _bad(message: str, key: str | None = None) -> InvalidInputError:
    return InvalidInputError(message, param=f"filter.{key}" if key else "filter",
                             code="invalid_filter")


def _scalar(value: Any, key: str) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (str, int, float)):
        return value
    raise _bad(f"filter value for {key!r} must be a string, number or boolean", key)


def _sub_filters(value: Any) -> list[Any]:
    if not isinstance(value, list) or not value or len(value) > MAX_AND:
        raise _bad(f"$and needs a list of 1 to {MAX_AND} filters", "$and")
    return value


def compile_filter(spec: Any) -> tuple[str, list[Any]]:
    """(SQL condition, parameters); raises InvalidInputError for a malformed filter."""
    if spec is None or spec == {}:
        return "1=1", []
    if not isinstance(spec, dict):
        raise _bad("filter must be an object of field conditions")
    clauses, params = [], []
    for key, cond in spec.items():
        if key == "$and":
            for sub in _sub_filters(cond):
                sql, sub_params = compile_filter(sub)
                clauses.append(f"({sql})")
                params.extend(sub_params)
            continue
        if not isinstance(key, str) or not _FIELD_RE.match(key):
            raise _bad(f"invalid filter field {key!r}")
        column = _TOP_LEVEL.get(key) or f"json_extract(d.metadata, '$.\"{key}\"')"
        if not isinstance(cond, dict):
            clauses.append(f"{column} = ?")
            params.append(_scalar(cond, key))
            continue
        if not cond:
            raise _bad(f"empty condition for {key!r}", key)
        for op, value in cond.items():
            if op in _OPS:
                clauses.append(f"{column} {_OPS[op]} ?")
                params.append(_scalar(value, key))
            elif op in ("$in", "$nin"):
                if not isinstance(value, list) or not value or len(value) > MAX_IN:
                    raise _bad(f"{op} for {key!r} needs a list of 1 to {MAX_IN} values", key)
                marks = ",".join("?" * len(value))
                clauses.append(f"{column} {'IN' if op == '$in' else 'NOT IN'} ({marks})")
                params.extend(_scalar(v, key) for v in value)
            else:
                raise _bad(f"unknown filter operator {op!r} for {key!r}; use one of "
                           f"{', '.join([*_OPS, '$in', '$nin'])}", key)
    return " AND ".join(clauses), params


def scoped(own: dict[str, Any] | None, requested: Any) -> Any:
    """`requested` narrowed by `own` (an API key's filter): both must hold."""
    if not own:
        return requested
    if requested is None or requested == {}:
        return own
    return {"$and": [own, requested]}


_COMPARE = {"$eq": lambda a, b: a == b, "$ne": lambda a, b: a != b,
            "$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
            "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b}


def _holds(op: str, have: Any, want: Any) -> bool:
    if have is None or isinstance(have, (dict, list)):
        return False  # SQL: NULL (or a JSON object) satisfies no comparison here
    if isinstance(have, bool):
        have = int(have)
    if op in ("$in", "$nin"):
        values = [_scalar(v, "") for v in want]
        return (have in values) == (op == "$in")
    want = _scalar(want, "")
    if isinstance(have, str) != isinstance(want, str):
        # SQLite orders numbers before text: a number is < any string.
        return {"$eq": False, "$ne": True, "$gt": isinstance(have, str),
                "$gte": isinstance(have, str), "$lt": isinstance(want, str),
                "$lte": isinstance(want, str)}[op]
    return _COMPARE[op](have, want)


def matches(spec: Any, doc: dict[str, Any]) -> bool:
    """Whether a document (`doc_id`, `title`, `metadata`) passes `spec` (a valid filter:
    compile it first for the error messages)."""
    if not spec:
        return True
    for key, cond in spec.items():
        if key == "$and":
            if not all(matches(sub, doc) for sub in cond):
                return False
            continue
        have = doc.get(key) if key in _TOP_LEVEL else (doc.get("metadata") or {}).get(key)
        conds = cond.items() if isinstance(cond, dict) else [("$eq", cond)]
        if not all(_holds(op, have, want) for op, want in conds):
            return False
    return True


def equalities(spec: dict[str, Any] | None) -> dict[str, Any]:
    """The metadata fields `spec` pins to one value (`{"tenant": "a"}`, `{"tenant":
    {"$eq": "a"}}`, inside `$and` too): what a write under that filter is stamped with."""
    out: dict[str, Any] = {}
    for key, cond in (spec or {}).items():
        if key == "$and":
            for sub in cond:
                out.update(equalities(sub))
        elif key not in _TOP_LEVEL:
            if not isinstance(cond, dict):
                out[key] = cond
            elif "$eq" in cond:
                out[key] = cond["$eq"]
    return out
