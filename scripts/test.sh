#!/usr/bin/env bash
# The whole test suite: lint, type check, then every test under coverage, and the line
# coverage of the orchestration (shaman_addon/submit) and of the whole core.
# A skipped or xfail test fails the run: every test must run here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
rm -f .coverage
.venv/bin/python -m coverage run -m pytest -p no:cacheprovider -rsxX "$@"
echo "== line coverage of the orchestration (shaman_addon/submit) =="
.venv/bin/python -m coverage report --include='shaman_addon/submit/*' --skip-empty
echo "== line coverage of the core (everything but the bpy layer) =="
.venv/bin/python -m coverage report --omit='shaman_addon/blender/*' --skip-empty | grep '^TOTAL'
