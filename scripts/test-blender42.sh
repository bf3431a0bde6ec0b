#!/usr/bin/env bash
# The Blender-layer tests on Blender 4.2 LTS (the oldest Blender the manifest allows).
# Creates .venv-bpy42 (Python 3.11, bpy 4.2.x, BAT 1.23) once, then runs the same tests
# as on 5.0 with their bpy subprocesses on that interpreter (SHAMAN_BPY_PYTHON); pytest
# itself, the local Shaman server and the type check stay on .venv.
# Usage: scripts/test-blender42.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
venv=.venv-bpy42
want="bpy==4.2.23 blender-asset-tracer==1.23"
stamp=$venv/.setup-done
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "test-blender42: creating $venv with $($py --version) and $want" >&2
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install -q $want >&2
  echo "$want" > "$stamp"
fi
if [ ! -x .venv/bin/python ]; then
  echo "test-blender42: .venv is missing; run scripts/setup.sh first" >&2
  exit 1
fi
"$venv/bin/python" -c "import bpy; print('test-blender42: bpy', bpy.app.version_string)" \
  2>/dev/null | grep '^test-blender42:' >&2
export SHAMAN_BPY_PYTHON="$repo/$venv/bin/python"
exec .venv/bin/python -m pytest -p no:cacheprovider -rsxX \
  tests/blender/test_blender_layer.py tests/blender/test_blender_install.py "$@"
