#!/usr/bin/env bash
# Reproduce the bundled model: train at three falling rates, calibrate, evaluate.
#
# Usage: bash scripts/train_bundled.sh [OUT_DIR]   (default out/train-bundled)
# Minutes per phase (rates 1e-3, 3e-4, 1e-4): PHASE1_MINUTES (default 34),
# PHASE2_MINUTES (default 25) and PHASE3_MINUTES (default 10).
# An interrupted run resumes from OUT_DIR/checkpoint.pt when started again.
# Copy OUT_DIR/gluformer_small.{pth,json} into glurpc_lab/model/bundled/ to ship the result.
set -euo pipefail

cd "$(dirname "$0")/.."
out="${1:-out/train-bundled}"
phase1_minutes="${PHASE1_MINUTES:-34}"
phase2_minutes="${PHASE2_MINUTES:-25}"
phase3_minutes="${PHASE3_MINUTES:-10}"

bash scripts/setup.sh
mkdir -p "$out"

# Each phase stops at its time limit and the next resumes from the checkpoint at a
# lower rate. The last one keeps the weights with the best validation score and
# fits the interval calibration on validation windows.
.venv/bin/glurpc-lab train --out "$out" --config small --lr 1e-3 --max-minutes "$phase1_minutes" --no-calibrate
.venv/bin/glurpc-lab train --out "$out" --config small --lr 3e-4 --max-minutes "$phase2_minutes" --no-calibrate
.venv/bin/glurpc-lab train --out "$out" --config small --lr 1e-4 --max-minutes "$phase3_minutes"
.venv/bin/glurpc-lab evaluate --model "$out/gluformer_small.pth" --samples 10 --max-windows 3000 \
    --arima-windows 60 --json "$out/model-evaluation.json" --markdown "$out/model-evaluation.md"
