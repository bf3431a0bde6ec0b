"""Overall deadlines for calls: connect, send and the whole answer.

Why: a socket timeout bounds ONE read or send, so a server that drips a byte a second
(or reads the request that slowly) holds a call for ever. A call made under ``guard``
registers the connections it uses; one watchdog thread shuts those down when the
deadline passes, and the blocked read or send returns at once (as ``abort()`` does). The
caller then asks ``expired`` and reports the deadline, not the broken connection.

One thread serves every call of the process: a guard costs a heap push, not a thread.
It ends itself after a quiet while and is started again by the next guard.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .sockets import HasSocket, shutdown

_PRUNE_MIN = 1024  # heap entries before finished calls are dropped from it
_IDLE_S = 10.0  # the watchdog thread ends after this long with nothing to watch
_local = threading.local()


class CallGuard:
    """One call's deadline and the connections it used."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._conns: list[HasSocket] = []
        self.expired = False
        self.done = False

    def watch(self, conn: HasSocket) -> None:
        """``conn`` carries this call: shut down if the deadline passes (or has passed)."""
        with self._lock:
            self._conns.append(conn)
            expired = self.expired
        if expired:
            shutdown(conn)

    def left(self) -> float:
        return self.at - time.monotonic()

    def expire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.expired = True
            conns = list(self._conns)
        for conn in conns:
            shutdown(conn)

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._conns.clear()


class _Watchdog:
    """The thread that expires guards whose deadline passed (earliest first)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, CallGuard]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._active = 0  # guards not finished
        self._quit = False  # settle(): end the thread now that nothing is watched
        self._prune_at = _PRUNE_MIN

    def add(self, guard: CallGuard) -> None:
        with self._cond:
            if len(self._heap) >= self._prune_at:
                # Calls that finished long before their deadline stay in the heap until
                # it would pass: drop them now and then, so thousands of quick uploads
                # leave a heap the size of the calls in flight.
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._prune_at = max(_PRUNE_MIN, 2 * len(self._heap))
            heapq.heappush(self._heap, (guard.at, next(self._order), guard))
            self._active += 1
            self._quit = False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="shaman-deadlines",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][2] is guard:
                self._cond.notify()

    def finished(self, guard: CallGuard) -> None:
        guard.finish()
        with self._cond:
            self._active -= 1
            if not self._active:
                self._heap.clear()

    def settle(self, timeout: float) -> None:
        """With no call in flight, end the thread (it is started again when needed) and
        wait for it up to ``timeout``: a closed client leaves no thread behind."""
        with self._cond:
            thread = self._thread if not self._active else None
            if thread is not None:
                self._quit = True
                self._cond.notify()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:  # ends once idle for _IDLE_S, or at once after settle()
            due = self._next_due()
            if due is None:
                return
            due.expire()

    def _next_due(self) -> CallGuard | None:
        """The next guard whose deadline passed (finished ones are dropped), or None
        (the thread ends) once nothing was watched for ``_IDLE_S`` or ``settle`` asked."""
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    if self._quit or (not self._cond.wait(_IDLE_S) and not self._heap):
                        self._thread = None
                        return None
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._heap)[2]
                self._cond.wait(wait)


_watchdog = _Watchdog()


@contextmanager
def guard(seconds: float | None) -> Iterator[CallGuard | None]:
    """Run a call under an overall deadline of ``seconds`` (None: no deadline). The
    connections made or used inside (``watch_current``) are cut when it passes."""
    if seconds is None:
        yield None
        return
    outer = getattr(_local, "guard", None)
    call = CallGuard(max(0.0, seconds))
    _local.guard = call
    _watchdog.add(call)
    try:
        yield call
    finally:
        _watchdog.finished(call)
        _local.guard = outer


def settle(timeout: float = 1.0) -> None:
    """End the watchdog thread if no call is in flight (``ShamanClient.close``)."""
    _watchdog.settle(timeout)


def watch_current(conn: HasSocket) -> None:
    """Put ``conn`` under the deadline of the call running on this thread, if any."""
    call: CallGuard | None = getattr(_local, "guard", None)
    if call is not None:
        call.watch(conn)
