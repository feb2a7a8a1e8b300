#!/usr/bin/env bash
# Retrain the sample context-json adapter (the `hybrid` route); run from the repository root.
#
# Data: the committed adapters/samples/data/context_json.{train,heldout}.jsonl (653 training
# and 59 held-out examples of 290-690 tokens), written by an earlier version of
# tools/context_json_data/make_context_json.py (its README says which, and why the data and
# this adapter are a pair). REGENERATE=1 rewrites the two files with today's generator
# first (~2 min); retrain the Qwen adapter (train_context_json_qwen.sh) too, then measure.
#
# Training: 2 epochs, 328 steps of batch 4 at peak lr 1e-3, seeded. On a quiet 2-core CPU
# VM, float32: 11-14 s a step, 72 minutes in all with model loading and the loss
# evaluations before and after; held-out loss 1.690 -> 0.193.
set -euo pipefail

if [[ "${REGENERATE:-0}" == 1 ]]; then
    .venv/bin/python tools/context_json_data/make_context_json.py
fi
.venv/bin/lorag adapters train \
    --base builtin:smollm2-135m-instruct \
    --data adapters/samples/data/context_json.train.jsonl \
    --eval-data adapters/samples/data/context_json.heldout.jsonl \
    --out adapters/samples/context-json \
    --epochs 2 --batch-size 4 --lr 1e-3 \
    --rank 8 --alpha 16 --target-modules q_proj,k_proj,v_proj,o_proj \
    --max-length 768 --seed 0
