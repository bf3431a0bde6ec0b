#!/usr/bin/env bash
# Builds the installable extension zip with Blender's own tool (blender_ext.py build):
#   dist/shaman_submitter-<version>.zip   (Edit > Preferences > Get Extensions >
#                                          Install from Disk)
# Usage: scripts/build-extension.sh [OUTPUT_DIR]      (default: dist/)
# Only files git knows or would add (tracked, or untracked and not ignored) plus the BAT
# wheel are packed, so stray local files never end up in the zip. SHAMAN_BPY_PYTHON
# picks the Python whose bpy provides the tool (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=${SHAMAN_BPY_PYTHON:-$repo/.venv/bin/python}

whl=wheels/blender_asset_tracer-1.23-py3-none-any.whl
if [ ! -f "$whl" ]; then
  echo "build-extension: $whl is missing; run scripts/setup.sh first" >&2
  exit 1
fi

site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
tool=$(ls "$site"/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py 2>/dev/null | head -n1 || true)
if [ -z "$tool" ]; then
  echo "build-extension: no blender_ext.py under $site/bpy (is bpy installed for $py?)" >&2
  exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 cp --parents -t "$stage"
cp --parents "$whl" "$stage"

"$py" "$tool" validate "$stage"
"$py" "$tool" build --source-dir "$stage" --output-dir "$out"
ls "$out"/shaman_submitter-*.zip
