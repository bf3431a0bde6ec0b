#!/usr/bin/env bash
# The "another server" test mode (README, Tests): the local Shaman server runs as a
# separate process, a first run fills its store with files and checkouts, then the
# tests run again against that pre-filled store, as they would against a real Manager
# that holds other work. Tests marked local_server_only (they need the in-process
# server's counters or fault injection) are deselected, never skipped.
# Usage: scripts/test-another-server.sh [PYTEST ARGS...]   (default: the folders below;
# CI runs the submission, command-line and fault-table folders, to keep its time down)
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
store=$(mktemp -d)
log=$(mktemp)
cleanup() {
  if [ -n "${server_pid:-}" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$store" "$log"
}
trap cleanup EXIT
"$py" tests/support/shaman_server.py --storage "$store" --port 0 >"$log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 100); do  # a bound: the server says its URL within seconds
  url=$(sed -n 's/^listening on //p' "$log")
  [ -n "$url" ] && break
  sleep 0.2
done
if [ -z "$url" ]; then echo "test-another-server: the server did not start:" >&2; cat "$log" >&2; exit 1; fi
export SHAMAN_TEST_URL="$url" SHAMAN_TEST_STORAGE="$store"
folders=(tests/submit tests/cli tests/e2e)
[ "$#" -gt 0 ] && folders=("$@")
echo "== another server at $url: first run, filling its store =="
start=$(date +%s)
"$py" -m pytest -p no:cacheprovider -q -rsxX tests/submit/test_pipeline.py
echo "== the store now holds $(find "$store/file-store" -name '*.blob' | wc -l) files and $(ls "$store/jobs" | wc -l) checkouts; the tests again =="
"$py" -m pytest -p no:cacheprovider -q -rsxX "${folders[@]}"
echo "== another-server mode took $(( $(date +%s) - start )) s =="
