"""Profile the local Shaman server (CPU per thread, merged) while a command runs against it.

    .venv/bin/python benchmarks/profile_server.py -- CMD ARGS...   ({url} in ARGS is replaced)

For example, the reference floor::

    .venv/bin/python benchmarks/profile_server.py -- .venv/bin/python \\
        benchmarks/reference_floor.py --server {url} .bench-cache/<prod>/files.txt

Shows where the server spends its CPU, to tell a slow client from a slow server.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "support"))
sys.path.insert(0, str(REPO / "benchmarks"))

from thread_profiling import every_thread, report  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--top", type=int, default=35)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args()
    cmd = [a for a in args.command if a != "--"]

    from shaman_server import ShamanServer

    with every_thread(time.thread_time) as profiles, \
            tempfile.TemporaryDirectory() as storage:
        server = ShamanServer(Path(storage)).start()
        try:
            t0 = time.perf_counter()
            subprocess.run([a.replace("{url}", server.url) for a in cmd], check=True)
            print(f"command took {time.perf_counter() - t0:.2f} s")
        finally:
            server.stop()
    report(profiles[1:], top=args.top, out=args.out)  # [0]: this thread, idle in run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
