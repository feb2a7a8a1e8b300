#!/usr/bin/env bash
# Regenerate the data of the sample context-json adapter (the `hybrid` route) and retrain it;
# run from the repository root. The generator indexes its invented documents with the route's
# embedder and chunking, retrieves like the route and renders prompts with serving/rag.py
# (653 training and 59 held-out examples of 290-690 tokens; about 2 minutes). Training:
# 120 steps of ~12.5 s at batch 4 (25 minutes) plus model loading and the loss evaluations
# before and after (5 minutes). Measured: 31.5 minutes for this whole script on two CPU cores
# shared with another process. Seeded: a rerun on one machine writes the same data and weights.
set -euo pipefail

.venv/bin/python adapters/samples/data/make_context_json.py
.venv/bin/lorag adapters train \
    --base builtin:smollm2-135m-instruct \
    --data adapters/samples/data/context_json.train.jsonl \
    --eval-data adapters/samples/data/context_json.heldout.jsonl \
    --out adapters/samples/context-json \
    --max-steps 120 --batch-size 4 --lr 1e-3 \
    --rank 8 --alpha 16 --target-modules q_proj,k_proj,v_proj,o_proj \
    --max-length 768 --seed 0
