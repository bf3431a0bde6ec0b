"""Profile the local Shaman server (CPU per thread, merged) while a command runs against it.

    .venv/bin/python benchmarks/profile_server.py -- CMD ARGS...   ({url} in ARGS is replaced)

For example, the reference floor::

    .venv/bin/python benchmarks/profile_server.py -- .venv/bin/python \\
        benchmarks/reference_floor.py --server {url} .bench-cache/<prod>/files.txt

Shows where the server spends its CPU, to tell a slow client from a slow server.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_original_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    prof = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(prof)
    prof.enable()
    try:
        _original_run(self)
    finally:
        prof.disable()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--top", type=int, default=35)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    cmd = [a for a in args.command if a != "--"]

    from shaman_server import ShamanServer

    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as storage:
        server = ShamanServer(Path(storage)).start()
        try:
            t0 = time.perf_counter()
            subprocess.run([a.replace("{url}", server.url) for a in cmd], check=True)
            print(f"command took {time.perf_counter() - t0:.2f} s")
        finally:
            server.stop()
    threading.Thread.run = _original_run  # type: ignore[method-assign]
    stats = pstats.Stats(_profiles[0])
    for prof in _profiles[1:]:
        stats.add(prof)
    if args.out:
        stats.dump_stats(str(args.out))
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
