"""Metadata filters for search, compiled to SQL over the document store.

    {"team": "infra"}                          equality
    {"year": {"$gte": 2020, "$lt": 2025}}      comparisons: $eq $ne $gt $gte $lt $lte
    {"lang": {"$in": ["en", "de"]}}            membership: $in $nin
    {"doc_id": {"$in": ["a", "b"]}}            doc_id and title are fields too

Several keys are ANDed. Anything else raises InvalidInputError naming the filter key.
"""

from __future__ import annotations

import re
from typing import Any

from retrieval.errors import InvalidInputError

__all__ = ["MAX_IN", "compile_filter"]

_FIELD_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
_OPS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_TOP_LEVEL = {"doc_id": "d.doc_id", "title": "d.title"}
MAX_IN = 1000


def _bad(message: str, key: str | None = None) -> InvalidInputError:
    return InvalidInputError(message, param=f"filter.{key}" if key else "filter",
                             code="invalid_filter")


def _scalar(value: Any, key: str) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (str, int, float)):
        return value
    raise _bad(f"filter value for {key!r} must be a string, number or boolean", key)


def compile_filter(spec: Any) -> tuple[str, list[Any]]:
    """(SQL condition, parameters); raises InvalidInputError for a malformed filter."""
    if spec is None or spec == {}:
        return "1=1", []
    if not isinstance(spec, dict):
        raise _bad("filter must be an object of field conditions")
    clauses, params = [], []
    for key, cond in spec.items():
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
