"""A small pool of upload threads with a queue that work can be put back on.

Uploads are I/O bound, so a few threads sharing one HTTP session keep the link busy. The
queue differs from ``concurrent.futures`` in what Shaman needs: a deferred file (425)
goes to the BACK of the queue after a short delay while other files go ahead, items can
be added while the pool runs (requirements answers arrive as hashes come in), and
``wait_idle`` means "everything put so far, and everything it put back, is finished".

Optional *fast lanes* take the items they accept (small files to a plain-http server),
each on ONE extra thread that writes several requests ahead on its connection and reads
the answers in order; whatever it cannot settle goes to the ordinary workers, which send it
again with all their retries and checks. One thread doing both halves of thousands of
small uploads has no hand-off per upload between threads.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class FastLane(Protocol[T_contra]):
    """Pipelined sending for some items; see the module docstring."""

    depth: int  # requests written ahead of the answers read

    def accepts(self, item: T_contra) -> bool: ...

    def start(self, item: T_contra) -> None:
        """Write the item's request; raising sends it the ordinary way."""

    def finish(self, item: T_contra) -> bool:
        """Read the oldest answer (it is ``item``'s); False or raising: the ordinary way."""

    def reset(self) -> None:
        """Forget the connection and any answers still due (after a failure or stop)."""

    def broken(self, items: Sequence[T_contra]) -> None:
        """``items`` were written to a connection that broke before their answers came:
        whether the server stored them is unknown (called before they fall back)."""


class UploadPool(Generic[T]):
    """Run ``work(item)`` on ``jobs`` threads; ``work`` may call ``put`` to requeue.

    The first exception a worker raises stops the pool from starting new items and is
    raised again by ``wait_idle``. ``stop`` (cancel) makes idle workers leave at once.
    """

    def __init__(self, jobs: int, work: Callable[[T], None], *, name: str = "upload",
                 fast: Sequence[FastLane[T]] = ()) -> None:
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
        self._fast = list(fast)  # one thread each, all taking from _fast_ready
        self._fast_ready: deque[T] = deque()
        self._fast_busy = 0  # taken by a fast lane and not settled yet
        self._fast_wake = threading.Condition(self._cond._lock)  # type: ignore[attr-defined]
        self._fast_threads: list[threading.Thread] = []

    def put(self, item: T, *, delay_s: float = 0.0) -> None:
        """Queue ``item`` at the back; with ``delay_s`` it is not started before then."""
        fast = bool(self._fast) and delay_s <= 0 and self._fast[0].accepts(item)
        with self._cond:
            if fast:
                self._fast_ready.append(item)
                if not self._fast_threads:
                    for number, lane in enumerate(self._fast):
                        thread = threading.Thread(target=self._fast_loop, args=(lane,),
                                                  name=f"{self._name}-fast-{number}",
                                                  daemon=True)
                        self._fast_threads.append(thread)
                        thread.start()
                self._fast_wake.notify()
                return
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
        self._fast_wake.notify_all()

    def _pending_locked(self) -> bool:
        return bool(self._ready or self._delayed or self._busy or self._fast_ready
                    or self._fast_busy)

    # -- the fast lane ------------------------------------------------------------------

    def _fast_loop(self, fast: FastLane[T]) -> None:
        written: deque[T] = deque()  # in the order their answers will come
        while True:
            with self._cond:
                while True:
                    if self._stopped or self._error is not None:
                        item, leave = None, True
                        break
                    if self._fast_ready and len(written) < fast.depth:
                        item, leave = self._fast_ready.popleft(), False
                        self._fast_busy += 1
                        break
                    if written:
                        item, leave = None, False
                        break
                    self._fast_wake.wait()
            if leave:
                fast.reset()
                self._fall_back(list(written))
                return
            if item is not None:
                try:
                    fast.start(item)
                except BaseException as exc:  # the ordinary way tells what is wrong
                    log.debug("fast lane: not sent (%s); the ordinary way", exc)
                    self._fall_back([item])
                else:
                    written.append(item)
                continue
            oldest = written.popleft()
            try:
                stored = fast.finish(oldest)
            except BaseException as exc:  # the connection is gone: all of them again
                log.debug("fast lane: %s; %d upload(s) go the ordinary way", exc,
                          len(written) + 1)
                fast.reset()
                fast.broken([oldest, *written])
                self._fall_back([oldest, *written])
                written.clear()
                continue
            if stored:
                self._settled(1)
            else:
                self._fall_back([oldest])

    def _fall_back(self, items: list[T]) -> None:
        """Items the fast lane took but did not settle: the ordinary workers send them."""
        if not items:
            return
        with self._cond:
            self._fast_busy -= len(items)
            if not self._stopped:
                self._ready.extend(items)
                self._start_threads_locked()
                self._work.notify(len(items))
            if not self._fast_busy:
                self._cond.notify_all()

    def _settled(self, count: int) -> None:
        with self._cond:
            self._fast_busy -= count
            if not self._fast_busy:
                self._cond.notify_all()  # wait_idle: maybe everything is done

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
                    while self._busy or self._fast_busy:
                        self._cond.wait(poll_s)
                    raise self._error
                if not self._pending_locked():
                    return
                if should_stop is not None and should_stop():
                    self._stopped = True
                    self._wake_all_locked()
                    while self._busy or self._fast_busy:
                        self._cond.wait(poll_s)
                    return
                self._cond.wait(poll_s)

    def backlog(self) -> int:
        """Items queued, waiting out a delay or running: how much work is left in hand."""
        with self._cond:
            return (len(self._ready) + len(self._delayed) + self._busy + len(self._fast_ready)
                    + self._fast_busy)

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
            self._fast_ready.clear()
            self._wake_all_locked()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the worker threads to leave (after ``stop``)."""
        for t in [*self._threads, *self._fast_threads]:
            t.join(timeout)
