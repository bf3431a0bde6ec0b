"""A small pool of upload threads with a queue that work can be put back on.

Uploads are I/O bound, so a few threads sharing one HTTP session keep the link busy. The
queue differs from ``concurrent.futures`` in what Shaman needs: a deferred file (425)
goes to the BACK of the queue after a short delay while other files go ahead, items can
be added while the pool runs (requirements answers arrive as hashes come in), and
``wait_idle`` means "everything put so far, and everything it put back, is finished".
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class UploadPool(Generic[T]):
    """Run ``work(item)`` on ``jobs`` threads; ``work`` may call ``put`` to requeue.

    The first exception a worker raises stops the pool from starting new items and is
    raised again by ``wait_idle``. ``stop`` (cancel) makes idle workers leave at once.
    """

    def __init__(self, jobs: int, work: Callable[[T], None], *, name: str = "upload") -> None:
        self._jobs = max(1, int(jobs))
        self._do = work
        self._name = name
        # One lock, two conditions: workers wait for work, ``wait_idle`` waits for the
        # end. A single condition woke every idle worker after every finished upload
        # (``notify_all``), thousands of needless GIL hand-offs in a cold submission.
        self._cond = threading.Condition()
        self._work = threading.Condition(self._cond._lock)  # type: ignore[attr-defined]
        self._ready: deque[T] = deque()
        self._delayed: list[tuple[float, int, T]] = []
        self._seq = itertools.count()
        self._busy = 0
        self._error: BaseException | None = None
        self._stopped = False
        self._threads: list[threading.Thread] = []

    def put(self, item: T, *, delay_s: float = 0.0) -> None:
        """Queue ``item`` at the back; with ``delay_s`` it is not started before then."""
        with self._cond:
            if delay_s > 0:
                heapq.heappush(
                    self._delayed, (time.monotonic() + delay_s, next(self._seq), item)
                )
            else:
                self._ready.append(item)
            self._start_threads_locked()
            self._work.notify()

    def _start_threads_locked(self) -> None:
        while len(self._threads) < self._jobs:
            t = threading.Thread(
                target=self._loop, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(t)
            t.start()

    def _wake_all_locked(self) -> None:
        self._cond.notify_all()
        self._work.notify_all()

    def _pending_locked(self) -> bool:
        return bool(self._ready or self._delayed or self._busy)

    def _next_locked(self) -> tuple[bool, T | None]:
        """(True, item) when there is work now; (False, None) to leave; else waits."""
        while True:
            if self._stopped or self._error is not None:
                return False, None
            now = time.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                self._ready.append(heapq.heappop(self._delayed)[2])
            if self._ready:
                return True, self._ready.popleft()
            timeout = self._delayed[0][0] - now if self._delayed else None
            self._work.wait(timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                ok, item = self._next_locked()
                if not ok:
                    return
                self._busy += 1
            try:
                self._do(item)  # type: ignore[arg-type]
            except BaseException as exc:  # handed to wait_idle's caller
                with self._cond:
                    if self._error is None:
                        self._error = exc
                    self._wake_all_locked()
            finally:
                with self._cond:
                    self._busy -= 1
                    if not self._busy:
                        self._cond.notify_all()  # wait_idle: maybe everything is done

    def wait_idle(self, poll_s: float = 0.2, should_stop: Callable[[], bool] | None = None) -> None:
        """Block until every item (and every item put back) is done; re-raise a failure.

        ``should_stop`` is asked every ``poll_s``; when it says yes the pool stops taking
        new items and this returns once the running ones have returned.
        """
        with self._cond:
            while True:
                if self._error is not None:
                    self._stopped = True
                    self._wake_all_locked()
                    while self._busy:
                        self._cond.wait(poll_s)
                    raise self._error
                if not self._pending_locked():
                    return
                if should_stop is not None and should_stop():
                    self._stopped = True
                    self._wake_all_locked()
                    while self._busy:
                        self._cond.wait(poll_s)
                    return
                self._cond.wait(poll_s)

    def backlog(self) -> int:
        """Items queued, waiting out a delay or running: how much work is left in hand."""
        with self._cond:
            return len(self._ready) + len(self._delayed) + self._busy

    def raise_if_failed(self) -> None:
        """Re-raise a worker's failure now, so a caller busy elsewhere stops early."""
        with self._cond:
            error = self._error
        if error is not None:
            self.wait_idle()

    def stop(self) -> None:
        """Start nothing new; idle workers leave. Running items finish on their own."""
        with self._cond:
            self._stopped = True
            self._ready.clear()
            self._delayed.clear()
            self._wake_all_locked()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the worker threads to leave (after ``stop``)."""
        for t in self._threads:
            t.join(timeout)
