"""When a call is tried again, per endpoint (the protocol page's retry table), and the
loop that does it with a capped, doubling back-off that ``abort()`` cuts short.

An attempt that fails raises ``AttemptFailed``: the error a person would read, and the
``Phase`` the exchange got to, which is all the rules look at.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import AttemptFailed, AttemptPhase, Cancelled, ShamanDisabled

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0
T = TypeVar("T")


RetryRule = Callable[[AttemptFailed], bool]


def _gateway_trouble(f: AttemptFailed, statuses: tuple[int, ...]) -> bool:
    return f.status in statuses or (f.status == 503 and not isinstance(f.error, ShamanDisabled))


def retry_read(f: AttemptFailed) -> bool:
    """requirements, file status, configuration: safe to repeat."""
    if f.phase in (AttemptPhase.CONNECT, AttemptPhase.SENT):
        return True
    return f.phase is AttemptPhase.STATUS and _gateway_trouble(f, (502, 504))


def retry_upload(f: AttemptFailed) -> bool:
    """POST file: content-addressed, so repeating is safe; a reset mid-body goes back to
    the caller (it asks the status first) instead of looping here."""
    if f.phase is AttemptPhase.CONNECT:
        return True
    return f.phase is AttemptPhase.STATUS and _gateway_trouble(f, (500, 502, 504))


def retry_create(f: AttemptFailed) -> bool:
    """checkout/create: only when nothing was sent at all."""
    return f.phase is AttemptPhase.CONNECT


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
