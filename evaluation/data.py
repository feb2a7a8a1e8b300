"""The evaluation's inputs: questions and format prompts, one JSON object a line.

Every problem is reported with the file and line it is on, and every problem
of a file is reported at once; no line is skipped except blank ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serving.errors import pydantic_param

__all__ = ["KINDS", "MAX_REPORTED", "DatasetError", "Question", "FormatPrompt",
           "load_jsonl", "load_questions", "load_format_prompts"]

KINDS = ("single", "multi", "unanswerable")
MAX_REPORTED = 20


class DatasetError(ValueError):
    """A questions or format-prompts file that cannot be used; names file and lines."""


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="Unique within its file.")
    question: str = Field(min_length=1, description="Sent as the user message.")
    answer: str = Field(description="Canonical answer; '' for unanswerable questions.")
    aliases: list[str] = Field(default_factory=list, description="Other accepted answers.")
    doc_ids: list[str] = Field(default_factory=list,
                               description="Documents (file stems) that hold the answer.")

    @property
    def answerable(self) -> bool:
        return bool(self.answer)


class Question(_Item):
    """A line of questions.jsonl."""

    kind: Literal["single", "multi", "unanswerable"]

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if self.kind == "unanswerable":
            if self.answer or self.doc_ids or self.aliases:
                raise ValueError("an unanswerable question has answer \"\", aliases [] and "
                                 "doc_ids []")
        elif not self.answer.strip() or not self.doc_ids:
            raise ValueError(f"a {self.kind} question needs a non-empty answer and doc_ids")
        elif self.kind == "multi" and len(set(self.doc_ids)) < 2:
            raise ValueError("a multi question names at least two doc_ids")
        return self


class FormatPrompt(_Item):
    """A line of format_prompts.jsonl: an answerable question, answered in JSON."""

    kind: Literal["format"] = "format"

    @model_validator(mode="after")
    def _answerable(self) -> FormatPrompt:
        if not self.answer.strip():
            raise ValueError("a format prompt needs a non-empty answer")
        return self


def _problem(err: ValidationError) -> str:
    first = err.errors(include_url=False, include_input=False)[0]
    param = pydantic_param(tuple(first.get("loc", ())))
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{param}: {msg}" if param else msg


def load_jsonl(path: str | Path, model: type[_Item]) -> list[_Item]:
    """The items of a JSONL file; raises DatasetError listing every bad line as
    ``file:line: problem``."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path}: cannot read: {err}") from None
    items: list[_Item] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = model.model_validate(json.loads(line))
        except json.JSONDecodeError as err:
            problems.append(f"{path}:{number}: not valid JSON: {err.msg} (column {err.colno})")
            continue
        except ValidationError as err:
            problems.append(f"{path}:{number}: {_problem(err)}")
            continue
        if item.id in seen:
            problems.append(f"{path}:{number}: duplicate id {item.id!r} (first on line "
                            f"{seen[item.id]})")
            continue
        seen[item.id] = number
        items.append(item)
    if problems:
        more = len(problems) - MAX_REPORTED
        listing = "\n  ".join(problems[:MAX_REPORTED]) + (f"\n  ... and {more} more"
                                                          if more > 0 else "")
        raise DatasetError(f"{len(problems)} malformed line(s):\n  {listing}")
    if not items:
        raise DatasetError(f"{path}: no questions in the file")
    return items


def load_questions(path: str | Path) -> list[Question]:
    return load_jsonl(path, Question)  # type: ignore[return-value]


def load_format_prompts(path: str | Path) -> list[FormatPrompt]:
    return load_jsonl(path, FormatPrompt)  # type: ignore[return-value]
