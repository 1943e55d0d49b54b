#!/usr/bin/env bash
# Makes benchmarks/.venv-pytomography: PyTomography 3.4 beside spectrial, for compare_pytomography.py only.
# PyTomography is not a spectrial dependency. torch is pinned first so that its CPU build is used.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv benchmarks/.venv-pytomography
benchmarks/.venv-pytomography/bin/pip install --quiet torch==2.13.0
benchmarks/.venv-pytomography/bin/pip install --quiet pytomography==3.4.0
benchmarks/.venv-pytomography/bin/pip install --quiet -e .
echo "ready: benchmarks/.venv-pytomography/bin/python benchmarks/compare_pytomography.py"
