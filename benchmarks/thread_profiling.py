"""cProfile on every thread, merged: what the two profiling tools share.

cProfile follows only the thread that enabled it, and a submission (or the local server)
does its work on pool threads; so while ``every_thread()`` is active each new thread's
``run`` gets its own profiler, and ``merged()`` adds them all up.
"""

from __future__ import annotations

import cProfile
import pstats
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def every_thread(timer: Callable[[], float] | None = None) -> Iterator[list[cProfile.Profile]]:
    """Profile the calling thread and every thread started inside the block."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    original_run = threading.Thread.run

    def new_profile() -> cProfile.Profile:
        prof = cProfile.Profile(timer) if timer else cProfile.Profile()
        with lock:
            profiles.append(prof)
        return prof

    def profiled_run(self: threading.Thread) -> None:
        prof = new_profile()
        prof.enable()
        try:
            original_run(self)
        finally:
            prof.disable()

    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    here = new_profile()
    here.enable()
    try:
        yield profiles
    finally:
        here.disable()
        threading.Thread.run = original_run  # type: ignore[method-assign]


def report(profiles: list[cProfile.Profile], *, top: int, out: Path | None) -> None:
    """Print the merged top functions by own time and by cumulative time."""
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        stats.add(prof)
    if out:
        stats.dump_stats(str(out))
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
