"""Bytes per file of the pack plan and of a submission's per-file records (issue 14).

    .venv/bin/python benchmarks/bench_plan_memory.py FILE.blend [--cache-dir DIR]

Collects FILE.blend in this process under ``tracemalloc`` (after a first run that fills
the trace cache, so the number is the plan's, not the tracing's), then takes every file
into a submission's ``Contents`` with a checksum, as the gathering stage does, and
prints what stays allocated per file, and the peak per file while collecting. Nothing
is sent anywhere.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shaman_addon.collect.collector import collect
from shaman_addon.submit.checksums import FileStat
from shaman_addon.submit.contents import Contents


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("blend", type=Path)
    p.add_argument("--cache-dir", type=Path, default=None)
    args = p.parse_args()
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="bench-plan-"))
    collect(args.blend, cache_dir=cache).cleanup()  # the trace cache, filled once
    shutil.rmtree(cache / "collections", ignore_errors=True)  # collected, not reused

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    plan = collect(args.blend, cache_dir=cache)
    seconds = time.perf_counter() - start
    plan_bytes, peak = tracemalloc.get_traced_memory()
    n = len(plan.files)
    contents = Contents()
    contents.add_found(plan.files, [FileStat.of(f.source_path) for f in plan.files],
                       [f"{i:064x}" for i in range(n)])
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    plan.cleanup()
    print(f"{n:,} files collected in {seconds:.2f} s ({seconds / n * 1e6:.0f} µs a file, "
          "under tracemalloc)")
    print(f"plan: {(plan_bytes - base) / n:.0f} bytes a file; peak while collecting: "
          f"{(peak - base) / n:.0f} bytes a file")
    print(f"plan + submission records (entry, stat, checksum, indexes): "
          f"{(held - base) / n:.0f} bytes a file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
