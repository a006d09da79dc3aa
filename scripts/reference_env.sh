#!/usr/bin/env bash
# Create the predecessor's environment used by the parity fixture script and the
# benchmark's side-by-side run: torch plus glucosedao-glucobench 0.4.1 without
# its dependencies (darts, optuna and the rest are needed only for training).
# Usage: bash scripts/reference_env.sh [FOLDER]   (default /work/refenv)
set -euo pipefail

target=${1:-/work/refenv}
python3 -m venv "$target"
"$target/bin/python" -m pip install --quiet --upgrade pip
"$target/bin/python" -m pip install --quiet "torch==2.13.0" numpy six tqdm
"$target/bin/python" -m pip install --quiet --no-deps "glucosedao-glucobench==0.4.1"
echo "reference environment ready: $target/bin/python"
