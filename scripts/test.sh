#!/usr/bin/env bash
# The whole test suite: lint, type check of the Blender layer, then every test.
# A skipped or xfail test fails the run: every test must run here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest -p no:cacheprovider -rsxX "$@"
