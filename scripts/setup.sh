#!/usr/bin/env bash
# Create .venv and install glurpc-lab into it. Pass --test to add the test
# tools and Debian's chromium (for the JupyterLab browser tests).
set -euo pipefail

cd "$(dirname "$0")/.."
want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip

# Pinned on purpose: this release is available as a CPU build here, while an
# unpinned torch resolves to a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "torch==2.13.0"
fi

if (( want_test )); then
    .venv/bin/python -m pip install --quiet -e ".[test]"
    if [[ ! -x /usr/bin/chromium ]]; then
        if [[ $(id -u) -eq 0 ]]; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else
            sudo apt-get update -qq
            sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        fi
    fi
else
    .venv/bin/python -m pip install --quiet -e .
fi
# A wheel install places jupyter-config/ under etc/jupyter by itself; an
# editable install does not, so copy the same file into the environment.
mkdir -p .venv/etc/jupyter/jupyter_server_config.d
cp jupyter-config/jupyter_server_config.d/glurpc_lab.json .venv/etc/jupyter/jupyter_server_config.d/
echo "glurpc-lab is installed in $(pwd)/.venv"
