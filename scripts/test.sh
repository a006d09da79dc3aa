#!/usr/bin/env bash
# Set everything up, including the test tools and chromium, then run the tests.
set -euo pipefail

cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# The hub is unreachable in tests by design: code that would download weights must fail fast.
export HF_HUB_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
