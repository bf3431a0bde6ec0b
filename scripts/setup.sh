#!/usr/bin/env bash
# Creates .venv/ in the repository root with every pinned dependency and fetches the
# unmodified BAT wheel into wheels/. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
stamp=.venv/.setup-done
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -r requirements-dev.txt >&2
  echo "$want" > "$stamp"
fi
whl=wheels/blender_asset_tracer-1.23-py3-none-any.whl
if [ ! -f "$whl" ] || ! (cd wheels && sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1); then
  echo "setup: downloading the BAT wheel into wheels/" >&2
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: \
      blender-asset-tracer==1.23 -d wheels >&2
  (cd wheels && sha256sum -c --quiet SHA256SUMS)
fi
