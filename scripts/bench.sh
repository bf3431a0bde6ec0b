#!/usr/bin/env bash
# The benchmark of issue 7: builds (once, cached in .bench-cache/) the productions, runs
# the reference floor and every submission case against a local Shaman server in its own
# process, prints one table and writes benchmarks/RESULTS.md. Assumes .venv/ exists
# (scripts/setup.sh). Options: --quick (fewer repeats), --server URL --storage DIR,
# --files N --total-mb MB, --big-gib N, --scale-files 300,3000,30000, --shaped (only the
# cases through the shaping proxy, benchmarks/shaped_link.py) or --no-shaped, --film (only
# the 100,000-file case, benchmarks/bench_film.py) or --no-film; see --help. The batch sizes
# of requirements calls: .venv/bin/python benchmarks/bench_batches.py.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python benchmarks/bench.py "$@"
