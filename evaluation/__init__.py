"""`lorag eval`: accuracy, retrieval recall, citation precision, JSON-format validity,
latency and tokens of each route over a corpus and a question set.

Modules: `data` (JSONL inputs), `scoring` (per-answer rules), `metrics` (per-route
figures), `stats` (intervals, paired tests between routes and runs), `runner` (the
HTTP client), `evaluate` (one run), `report` (JSON, markdown, PNG), `command` (the CLI:
`lorag eval`, `lorag eval-compare`). The sample sets are in `samples/` (`SAMPLES`), the
tests in `tests/`.
"""

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "samples"

__all__ = ["SAMPLES", "EvalError", "EvalOptions", "evaluate", "load_format_prompts", "load_questions",
           "write_report"]

_HOMES = {"EvalError": "runner", "EvalOptions": "evaluate", "evaluate": "evaluate",
          "load_format_prompts": "data", "load_questions": "data", "write_report": "report"}


def __getattr__(name: str):
    # The CLI imports `command` only; the rest (openai, httpx, matplotlib) on use.
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"evaluation.{_HOMES[name]}"), name)
    raise AttributeError(name)
