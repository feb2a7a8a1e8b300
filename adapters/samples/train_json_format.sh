#!/usr/bin/env bash
# Retrain the sample json-format adapter from its data; run from the repository root.
# About 8 minutes on two idle CPU cores (144 steps of ~2.5 s, plus loss evaluations),
# 12 when the cores are shared. Seeded: a rerun on one machine writes the same weights.
set -euo pipefail

.venv/bin/python adapters/samples/data/make_json_format.py
.venv/bin/lorag adapters train \
    --base builtin:smollm2-135m-instruct \
    --data adapters/samples/data/json_format.train.jsonl \
    --eval-data adapters/samples/data/json_format.heldout.jsonl \
    --out adapters/samples/json-format \
    --epochs 3 --batch-size 8 --lr 5e-4 \
    --rank 8 --alpha 16 --target-modules q_proj,k_proj,v_proj,o_proj \
    --max-length 256 --seed 0
