#!/usr/bin/env bash
# Reproduce the bundled model: train, fine-tune at a lower rate, calibrate, evaluate.
#
# Usage: bash scripts/train_bundled.sh [OUT_DIR]   (default out/train-bundled)
# Minutes per phase: TRAIN_MINUTES (default 65) and FINETUNE_MINUTES (default 20).
# An interrupted run resumes from OUT_DIR/checkpoint.pt when started again.
# Copy OUT_DIR/gluformer_small.{pth,json} into glurpc_lab/model/bundled/ to ship the result.
set -euo pipefail

cd "$(dirname "$0")/.."
out="${1:-out/train-bundled}"
train_minutes="${TRAIN_MINUTES:-65}"
finetune_minutes="${FINETUNE_MINUTES:-20}"

bash scripts/setup.sh
mkdir -p "$out"

# The first phase stops at its time limit and writes the best weights so far. The
# second resumes from the checkpoint at a lower rate, then fits the interval factors.
.venv/bin/glurpc-lab train --out "$out" --config small --lr 1e-3 --max-minutes "$train_minutes" --no-calibrate
.venv/bin/glurpc-lab train --out "$out" --config small --lr 3e-4 --max-minutes "$finetune_minutes"
.venv/bin/glurpc-lab evaluate --model "$out/gluformer_small.pth" --samples 10 --max-windows 3000 \
    --json "$out/model-evaluation.json" --markdown "$out/model-evaluation.md"
