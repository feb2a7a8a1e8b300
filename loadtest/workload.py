"""What the load test sends: the user mix, the routes, prompt lengths and prompts.

Pure (no locust) so that it can be unit-tested and shared by the headless
runner, the locust CLI (`locust -f loadtest/locustfile.py`) and the sweep.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "evaluation" / "samples" / "helix" / "questions.jsonl"
SAMPLE_ADAPTER = ROOT / "adapters" / "samples" / "json-format"

# User kinds: one locust user class each (loadtest/locustfile.py).
GENERATION_KINDS = ("plain", "rag", "adapter", "hybrid")
KINDS = (*GENERATION_KINDS, "admin")
DEFAULT_ROUTES = {"plain": "base", "rag": "rag", "adapter": "tuned", "hybrid": "hybrid"}
DEFAULT_MIX = {"plain": 1, "rag": 1, "adapter": 1, "hybrid": 1, "admin": 1}

# Short English words the SmolLM2 tokenizer keeps as one token each (with their
# leading space), so a prompt of N filler words is close to N tokens.
FILLER = ("the farm keeps water in a tank near the old mill and the team checks it each "
          "day before work starts so that crops get what they need when the sun is high "
          "and the soil is dry we plan to add more beds next year if the grant comes "
          "through").split()

GENERAL_QUESTIONS = (
    "What is the capital of France?",
    "How many legs does a spider have?",
    "Which planet is closest to the sun?",
    "What is the boiling point of water in Celsius?",
    "Who wrote Romeo and Juliet?",
    "What gas do plants take in from the air?",
    "How many days are there in a leap year?",
    "What is the largest ocean on Earth?",
)


def parse_mix(text: str | None) -> dict[str, int]:
    """`plain=4,rag=2,adapter=1,hybrid=1,admin=1` -> weights; kinds left out get 0.

    `admin` is a count of admin users (0 or more), the others are weights.

    >>> parse_mix("plain=3,admin=0")
    {'plain': 3, 'rag': 0, 'adapter': 0, 'hybrid': 0, 'admin': 0}
    """
    if not text:
        return dict(DEFAULT_MIX)
    mix = dict.fromkeys(KINDS, 0)
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if name not in mix:
            raise ValueError(f"--mix: unknown user kind {name!r} (known: {', '.join(KINDS)})")
        try:
            weight = int(value) if sep else 1
        except ValueError:
            raise ValueError(f"--mix: {name}={value!r} is not a whole number") from None
        if weight < 0:
            raise ValueError(f"--mix: {name} must be >= 0")
        mix[name] = weight
    if not any(mix[k] for k in GENERATION_KINDS):
        raise ValueError("--mix: give at least one of plain, rag, adapter, hybrid a weight")
    return mix


def parse_routes(text: str | None) -> dict[str, str]:
    """`plain=base,adapter=my-lora` -> the route (model id) each kind sends to."""
    routes = dict(DEFAULT_ROUTES)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        kind, sep, route = part.strip().partition("=")
        if kind not in routes or not sep or not route:
            raise ValueError(f"--routes: expected KIND=ROUTE with KIND one of "
                             f"{', '.join(DEFAULT_ROUTES)}, got {part!r}")
        routes[kind] = route
    return routes


def parse_length(text: str | int) -> tuple[int, int]:
    """`64` or `32-256` (uniform) -> (low, high) prompt length in tokens."""
    low, _, high = str(text).partition("-")
    try:
        lo, hi = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"--prompt-len: expected N or LOW-HIGH, got {text!r}") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"--prompt-len: need 1 <= LOW <= HIGH, got {text!r}")
    return lo, hi


def filler_prompt(rng: random.Random, tokens: int) -> str:
    """A question after about `tokens` tokens of notes, in random order so that
    requests do not share a prefix beyond the instruction (as real traffic)."""
    question = rng.choice(GENERAL_QUESTIONS)
    words = max(tokens - 16, 0)
    notes = " ".join(rng.choice(FILLER) for _ in range(words))
    return f"Notes: {notes}\n\nIgnore the notes. {question}" if notes else question


def load_questions(path: Path = QUESTIONS) -> list[str]:
    """The sample knowledge base's questions (answerable and not, as in production)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return list(GENERAL_QUESTIONS)
    return [json.loads(line)["question"] for line in lines if line.strip()] or list(
        GENERAL_QUESTIONS)


@dataclass
class Workload:
    """Everything a user class needs; one per run, attached to the locust Environment."""

    mix: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    routes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ROUTES))
    prompt_len: tuple[int, int] = (64, 64)
    max_tokens: int = 32
    ignore_eos: bool = False
    temperature: float = 0.0
    think_time_s: tuple[float, float] = (0.0, 0.0)
    admin_index: str = "helix"
    admin_wait_s: tuple[float, float] = (1.0, 3.0)
    adapter_source: str = str(SAMPLE_ADAPTER)
    run_id: str = field(default_factory=lambda: f"loadtest-{uuid.uuid4().hex[:6]}")
    questions: list[str] = field(default_factory=load_questions)

    def messages(self, kind: str, rng: random.Random) -> list[dict[str, str]]:
        if kind in ("rag", "hybrid"):
            question = rng.choice(self.questions)
        else:
            question = filler_prompt(rng, rng.randint(*self.prompt_len))
        return [{"role": "user", "content": question}]

    def chat_body(self, kind: str, rng: random.Random) -> dict:
        body = {"model": self.routes[kind], "messages": self.messages(kind, rng),
                "max_tokens": self.max_tokens, "temperature": self.temperature,
                "stream": True, "stream_options": {"include_usage": True}}
        if self.ignore_eos:
            body["ignore_eos"] = True  # vLLM's extension: exactly max_tokens tokens
        return body

    def routes_in_use(self) -> list[str]:
        return [self.routes[k] for k in GENERATION_KINDS if self.mix.get(k)]
