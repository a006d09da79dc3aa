#!/usr/bin/env bash
# Set everything up, then forecast a real Dexcom export and write an HTML report.
set -euo pipefail

cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/glurpc-lab demo --out out/demo "$@"
