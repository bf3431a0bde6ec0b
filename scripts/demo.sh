#!/usr/bin/env bash
# The main job end to end, with no Flamenco install: starts a local Shaman server on a
# free loopback port, builds a small demo production with real Blender (bpy), submits it,
# shows the checkout, proves it opens with nothing missing, then resubmits (nothing sent).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
