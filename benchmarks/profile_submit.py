"""Profile one submission with cProfile on EVERY thread (hashing and upload threads too).

    .venv/bin/python benchmarks/profile_submit.py --server URL [--cache-dir DIR] FILE.blend

cProfile only follows the thread that enabled it, and a submission does its work on
pool threads; so each thread's ``run`` is wrapped in its own profiler here and the
results are merged. Prints the top functions by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

_profiles: list[cProfile.Profile] = []
_timer: list[object] = []  # time.thread_time with --cpu: CPU only, no waits
_lock = threading.Lock()
_original_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    prof = cProfile.Profile(*_timer)  # type: ignore[arg-type]
    with _lock:
        _profiles.append(prof)
    prof.enable()
    try:
        _original_run(self)
    finally:
        prof.disable()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("blend", type=Path)
    p.add_argument("--server", required=True)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--out", type=Path, default=None, help="also save merged stats here")
    p.add_argument("--cpu", action="store_true",
                   help="count each thread's CPU time only (no time spent waiting)")
    args = p.parse_args()
    if args.cpu:
        _timer.append(time.thread_time)

    from shaman_addon.pipeline import Submission, SubmitOptions

    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="profile-cache-"))
    options = SubmitOptions(server_url=args.server, cache_dir=cache, jobs=args.jobs)
    main_prof = cProfile.Profile(*_timer)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    main_prof.enable()
    result = Submission(args.blend, options).run()
    main_prof.disable()
    wall = time.perf_counter() - t0
    threading.Thread.run = _original_run  # type: ignore[method-assign]

    stats = pstats.Stats(main_prof)
    for prof in _profiles:
        stats.add(prof)
    if args.out:
        stats.dump_stats(str(args.out))
    print(f"wall {wall:.2f} s, {result.files_total} files, uploaded {result.files_uploaded}; "
          f"phases {result.phase_seconds}")
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
