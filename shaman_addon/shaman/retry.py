"""When a call is tried again, per endpoint (the protocol page's retry table), and the
loop that does it with a capped, doubling back-off that ``abort()`` cuts short.

An attempt that fails raises ``AttemptFailed``: the error a person would read, and the
``Phase`` the exchange got to, which is all the rules look at.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import Cancelled, ShamanDisabled, ShamanError

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0
T = TypeVar("T")


class Phase(enum.Enum):
    CONNECT = "connect"  # no connection was made: nothing was sent
    SENT = "sent"  # the request (or part of it) went out; no usable answer
    STATUS = "status"  # an HTTP answer with an error status
    FINAL = "final"  # never retried (TLS, cancel, local file, odd answer...)


class AttemptFailed(Exception):
    """One attempt's failure: ``error`` for the person, ``phase`` for the rules.
    ``cause``: the failure the error was made from, its ``__cause__`` when raised (as
    ``raise error from cause`` would set it, also for a reworded copy's original)."""

    def __init__(self, error: ShamanError, phase: Phase, status: int | None = None,
                 cause: BaseException | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.phase = phase
        self.status = status
        self.cause = cause
        if cause is not None:
            error.__cause__ = cause


RetryRule = Callable[[AttemptFailed], bool]


def _gateway_trouble(f: AttemptFailed, statuses: tuple[int, ...]) -> bool:
    return f.status in statuses or (f.status == 503 and not isinstance(f.error, ShamanDisabled))


def retry_read(f: AttemptFailed) -> bool:
    """requirements, file status, configuration: safe to repeat."""
    if f.phase in (Phase.CONNECT, Phase.SENT):
        return True
    return f.phase is Phase.STATUS and _gateway_trouble(f, (502, 504))


def retry_upload(f: AttemptFailed) -> bool:
    """POST file: content-addressed, so repeating is safe; a reset mid-body goes back to
    the caller (it asks the status first) instead of looping here."""
    if f.phase is Phase.CONNECT:
        return True
    return f.phase is Phase.STATUS and _gateway_trouble(f, (500, 502, 504))


def retry_create(f: AttemptFailed) -> bool:
    """checkout/create: only when nothing was sent at all."""
    return f.phase is Phase.CONNECT


class Retrier:
    """Runs attempts until one succeeds, a rule says stop, or ``max_attempts`` is spent.
    ``sleep`` is injectable (tests record delays); the real one waits on ``aborted`` so
    ``abort()`` ends a back-off at once."""

    def __init__(self, max_attempts: int, backoff_s: float, aborted: threading.Event,
                 sleep: Callable[[float], None]) -> None:
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._aborted = aborted
        self._sleep = sleep

    def run(self, what: str, attempt: Callable[[], T], retryable: RetryRule) -> T:
        last = self._max_attempts
        for number in range(1, last + 1):
            if self._aborted.is_set():
                raise Cancelled(f"{what} cancelled: the client was stopped")
            try:
                return attempt()
            except AttemptFailed as failed:
                again = retryable(failed)
                if number < last and again:
                    delay = min(self._backoff_s * (2 ** (number - 1)), MAX_BACKOFF_S)
                    log.warning("%s (attempt %d of %d); trying again in %.2f s",
                                failed.error, number, last, delay)
                    self._pause(delay)
                    continue
                if number > 1 and again:
                    raise failed.error.reworded(
                        f"{failed.error} (gave up after {number} attempts)") from failed.error
                raise failed.error from failed.cause
        raise AssertionError("unreachable")

    def _pause(self, delay: float) -> None:
        if self._sleep is time.sleep:
            self._aborted.wait(delay)  # abort() cuts a back-off short
        else:
            self._sleep(delay)
