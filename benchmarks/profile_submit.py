"""Profile one submission with cProfile on EVERY thread (hashing and upload threads too).

    .venv/bin/python benchmarks/profile_submit.py --server URL [--cache-dir DIR] FILE.blend

cProfile only follows the thread that enabled it, and a submission does its work on
pool threads; so each thread's ``run`` is wrapped in its own profiler here and the
results are merged. Prints the top functions by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from thread_profiling import every_thread, report


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

    from shaman_addon.submit import Submission, SubmitOptions

    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="profile-cache-"))
    options = SubmitOptions(server_url=args.server, cache_dir=cache, jobs=args.jobs)
    t0 = time.perf_counter()
    with every_thread(time.thread_time if args.cpu else None) as profiles:
        result = Submission(args.blend, options).run()
    wall = time.perf_counter() - t0
    print(f"wall {wall:.2f} s, {result.files_total} files, uploaded {result.files_uploaded}; "
          f"phases {result.phase_seconds}")
    report(profiles, top=args.top, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
