"""Upload threads with a queue that work can be put back on, and optional pipelined lanes.

Uploads are I/O bound, so a few threads keep the link busy. The queue differs from
``concurrent.futures`` in what Shaman needs: a deferred file (425) goes to the BACK of
the queue after a short delay while other files go ahead, items can be added while the
pool runs (requirements answers arrive as checksums come in), and ``wait_idle`` means
"everything put so far, and everything it put back, is finished".

A *lane* is one pipelined connection driven by ONE thread of its own: it writes the
requests of the items it accepts ahead of their answers (up to a number of requests
and bytes) and reads the answers in order, with no hand-off between threads per
upload. Several lanes share one queue. Whatever a lane cannot settle goes to the
ordinary threads, which send it again with all their retries and checks.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Lane(Protocol[T_contra]):
    """One pipelined connection; see the module docstring."""

    def accepts(self, item: T_contra) -> bool: ...

    def write(self, item: T_contra) -> int:
        """Write the item's request; returns the bytes written. Raising sends the item
        the ordinary way."""

    def read(self, item: T_contra) -> bool:
        """Read the oldest answer (it is ``item``'s): True when stored, False to send the
        item the ordinary way. Raising means its answer is lost (the connection broke
        before it came): the lane drops that connection itself, so every other item
        written on it raises too, while items already on a new connection do not."""

    def broken(self, items: Sequence[T_contra], error: BaseException) -> None:
        """The answers of ``items`` are lost to ``error``: whether the server stored
        them is unknown (called before they fall back)."""

    def reset(self) -> None:
        """Forget the connection and any answers still due (after a failure, or to stop)."""


@dataclass(frozen=True)
class AheadLimit:
    """How far a lane writes ahead of the answers it has read."""

    requests: int = 128
    nbytes: int = 4 << 20

    def room(self, written: int, written_bytes: int) -> bool:
        return written < self.requests and written_bytes < self.nbytes


class UploadPool(Generic[T]):
    """Run ``work(item)`` on ``jobs`` threads; ``work`` may call ``put`` to requeue.

    The first exception a worker raises stops the pool from starting new items and is
    raised again by ``wait_idle``. ``stop`` (cancel) makes idle workers leave at once.
    """

    def __init__(self, jobs: int, work: Callable[[T], None], *, name: str = "upload",
                 lanes: Sequence[Lane[T]] = (), ahead: AheadLimit | None = None) -> None:
        self._jobs = max(1, int(jobs))
        self._do = work
        self._name = name
        # One lock, three conditions: ordinary workers wait for work, lanes for their
        # work, ``wait_idle`` for the end. One condition for all woke every idle worker
        # after every finished upload, thousands of needless GIL hand-offs.
        self._cond = threading.Condition()
        lock = self._cond._lock  # type: ignore[attr-defined]
        self._work = threading.Condition(lock)
        self._lane_wake = threading.Condition(lock)
        self._ready: deque[T] = deque()
        self._delayed: list[tuple[float, int, T]] = []
        self._seq = itertools.count()
        self._busy = 0
        self._error: BaseException | None = None
        self._stopped = False
        self._threads: list[threading.Thread] = []
        self._lanes = list(lanes)
        self._ahead = ahead or AheadLimit()
        self._lane_ready: deque[T] = deque()
        self._lane_busy = 0  # taken by a lane and not settled yet
        self._lane_threads: list[threading.Thread] = []

    def put(self, item: T, *, delay_s: float = 0.0) -> None:
        """Queue ``item`` at the back; with ``delay_s`` it is not started before then."""
        to_lane = bool(self._lanes) and delay_s <= 0 and self._lanes[0].accepts(item)
        with self._cond:
            if to_lane:
                self._lane_ready.append(item)
                self._start_lanes_locked()
                self._lane_wake.notify()
                return
            if delay_s > 0:
                heapq.heappush(self._delayed, (time.monotonic() + delay_s, next(self._seq), item))
            else:
                self._ready.append(item)
            self._start_threads_locked()
            self._work.notify()

    def _start_threads_locked(self) -> None:
        while len(self._threads) < self._jobs:
            t = threading.Thread(target=self._loop, name=f"{self._name}-{len(self._threads)}",
                                 daemon=True)
            self._threads.append(t)
            t.start()

    def _start_lanes_locked(self) -> None:
        while len(self._lane_threads) < len(self._lanes):
            lane = self._lanes[len(self._lane_threads)]
            t = threading.Thread(target=self._lane_loop, args=(lane,), daemon=True,
                                 name=f"{self._name}-lane-{len(self._lane_threads)}")
            self._lane_threads.append(t)
            t.start()

    def _wake_all_locked(self) -> None:
        self._cond.notify_all()
        self._work.notify_all()
        self._lane_wake.notify_all()

    def _pending_locked(self) -> bool:
        return bool(self._ready or self._delayed or self._busy or self._lane_ready
                    or self._lane_busy)

    # -- lanes ----------------------------------------------------------------------------

    def _lane_next(self, written: int, written_bytes: int) -> tuple[bool, T | None]:
        """(False, None): leave; (True, item): write it; (True, None): read an answer."""
        with self._cond:
            while True:
                if self._stopped or self._error is not None:
                    return False, None
                if self._lane_ready and self._ahead.room(written, written_bytes):
                    self._lane_busy += 1
                    return True, self._lane_ready.popleft()
                if written:
                    return True, None
                self._lane_wake.wait()

    def _lane_loop(self, lane: Lane[T]) -> None:
        written: deque[tuple[T, int]] = deque()  # in the order their answers will come
        ahead = 0
        while True:
            go_on, item = self._lane_next(len(written), ahead)
            if not go_on:
                lane.reset()
                self._fall_back([i for i, _ in written])
                return
            if item is not None:
                try:
                    nbytes = lane.write(item)
                except BaseException as exc:  # the ordinary way tells what is wrong
                    log.debug("lane: not sent (%s); the ordinary way", exc)
                    self._fall_back([item])
                else:
                    written.append((item, nbytes))
                    ahead += nbytes
                continue
            oldest, nbytes = written.popleft()
            ahead -= nbytes
            try:
                stored = lane.read(oldest)
            except BaseException as exc:  # its answer is lost; the lane knows for which
                log.debug("lane: %s; one upload goes the ordinary way", exc)
                lane.broken([oldest], exc)
                self._fall_back([oldest])
                continue
            if stored:
                self._settled(1)
            else:
                self._fall_back([oldest])

    def _fall_back(self, items: list[T]) -> None:
        """Items a lane took but did not settle: the ordinary workers send them."""
        if not items:
            return
        with self._cond:
            self._lane_busy -= len(items)
            if not self._stopped:
                self._ready.extend(items)
                self._start_threads_locked()
                self._work.notify(len(items))
            if not self._lane_busy:
                self._cond.notify_all()

    def _settled(self, count: int) -> None:
        with self._cond:
            self._lane_busy -= count
            if not self._lane_busy:
                self._cond.notify_all()  # wait_idle: maybe everything is done

    # -- ordinary workers -------------------------------------------------------------

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

    # -- the caller's side ------------------------------------------------------------

    def wait_idle(self, poll_s: float = 0.2, should_stop: Callable[[], bool] | None = None) -> None:
        """Block until every item (and every item put back) is done; re-raise a failure.

        ``should_stop`` is asked every ``poll_s``; when it says yes the pool stops taking
        new items and this returns once the running ones have returned.
        """
        with self._cond:
            while True:
                failed = self._error is not None
                if failed or (should_stop is not None and should_stop()):
                    # Stopped by the caller, the caller's reason wins over what the
                    # running items met while being stopped.
                    self._stopped = True
                    self._wake_all_locked()
                    while self._busy or self._lane_busy:
                        self._cond.wait(poll_s)
                    if failed and self._error is not None:
                        raise self._error
                    return
                if not self._pending_locked():
                    return
                self._cond.wait(poll_s)

    def backlog(self) -> int:
        """Items queued, waiting out a delay or running: how much work is left in hand."""
        with self._cond:
            return (len(self._ready) + len(self._delayed) + self._busy + len(self._lane_ready)
                    + self._lane_busy)

    def raise_if_failed(self) -> None:
        """Re-raise a worker's failure now, so a caller busy elsewhere stops early."""
        with self._cond:
            failed = self._error is not None
        if failed:
            self.wait_idle()

    def stop(self) -> None:
        """Start nothing new; idle workers leave. Running items finish on their own."""
        with self._cond:
            self._stopped = True
            self._ready.clear()
            self._delayed.clear()
            self._lane_ready.clear()
            self._wake_all_locked()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the worker threads to leave (after ``stop``)."""
        for t in [*self._threads, *self._lane_threads]:
            t.join(timeout)
