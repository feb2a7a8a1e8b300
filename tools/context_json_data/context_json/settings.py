"""Seed, route, model, split sizes and per-organisation quotas."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SEED = 20250214
ROUTE = "hybrid"
CONFIG = ROOT / "configs" / "default.yaml"
MODEL = "builtin:smollm2-135m-instruct"
MAX_EXAMPLE_TOKENS = 1024
IDK = "I don't know."
TRAIN_ORGS, HELDOUT_ORGS = 56, 5
# Examples kept per organisation: single facts, two-fact answers, designed unanswerables,
# (when retrieval missed a single fact) "I don't know." examples, and masked questions:
# answerable single facts asked of the index without the chunks that state them, so the
# sources are the closest related chunks and none holds the answer ("I don't know.").
QUOTA = {"single": 7, "two": 2, "unanswerable": 2, "miss": 1, "masked": 2}
MISS_RATE = 0.6  # share of organisations that also get a retrieval-miss example
MASK_EXTRA = 8  # extra hits searched for a masked question, to refill top_k
SINGLES_SEARCHED = 18  # single-fact candidates searched per organisation
