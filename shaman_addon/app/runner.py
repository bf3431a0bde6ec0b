"""One submission on a worker thread, with cancel and a typed outcome.

The command line and Blender both run a submission this way: the worker runs
``Submission.run`` and fills the progress queue; the calling thread (the terminal's main
thread, Blender's main thread) reads the queue and, once ``done`` is set, the
``Outcome``. Nothing here touches ``bpy``: a subclass may add work to ``cleanup``, which
runs on the worker, so it must stay plain Python (Blender removes its temporary copy
there). The thread is a daemon so it never keeps a process from ending.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import Cancelled, ShamanError
from ..progress import ProgressEvent
from .exit_codes import exit_code_for
from .present import error_text

if TYPE_CHECKING:
    from ..shaman.client import ClientSettings, ServerCheck
    from ..submit import Submission, SubmitOptions, SubmitResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How a submission ended: a result, or the error that stopped it."""

    result: SubmitResult | None = None
    error: BaseException | None = None

    @property
    def cancelled(self) -> bool:
        return isinstance(self.error, Cancelled)

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.error)

    @property
    def message(self) -> str:
        """The sentence for the error ('' when it succeeded)."""
        return error_text(self.error) if self.error is not None else ""


class SubmissionRunner:
    """``Submission.run`` for one .blend on a daemon thread.

    ``blend`` and ``options`` may still be changed until ``start``.
    """

    def __init__(
        self, blend: Path, options: SubmitOptions, *, thread_name: str = "shaman-submit"
    ) -> None:
        self.blend = blend
        self.options = options
        self.events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
        self.cancel_event = threading.Event()
        self.done = threading.Event()
        self._outcome: Outcome | None = None
        self._submission: Submission | None = None
        self._lock = threading.RLock()  # re-entrant: a second Ctrl-C may interrupt cancel()
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)

    # -- the calling thread ----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> bool:
        """Ask the submission to stop; safe from any thread (a signal handler too), any
        number of times. True the first time."""
        with self._lock:
            first = not self.cancel_event.is_set()
            self.cancel_event.set()
            sub = self._submission
        if sub is not None:
            try:
                sub.cancel()
            except Exception:  # cancelling must never raise into a handler or the UI
                log.exception("cancelling the submission failed")
        return first

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True when it has finished."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return self.done.is_set()

    @property
    def outcome(self) -> Outcome:
        """How it ended; only once ``done`` is set."""
        if self._outcome is None or not self.done.is_set():
            raise RuntimeError("the submission has not finished")
        return self._outcome

    def cleanup(self) -> None:
        """Runs on the worker after the submission, before ``done`` is set."""

    # -- the worker -------------------------------------------------------------------------
    def _run(self) -> None:
        from ..submit import Submission  # late: the command line's --help stays fast

        result: SubmitResult | None = None
        error: BaseException | None = None
        try:
            with self._lock:
                if self.cancel_event.is_set():
                    raise Cancelled("The submission was cancelled before it started.")
                self._submission = Submission(
                    self.blend, self.options, events=self.events, cancel=self.cancel_event
                )
            result = self._submission.run()
        except BaseException as exc:  # the worker always hands back an outcome
            if not isinstance(exc, ShamanError):
                log.error("the submission of %s failed unexpectedly", self.blend, exc_info=exc)
            error = exc
        finally:
            try:
                self.cleanup()
            except Exception:
                log.exception("cleaning up after the submission of %s failed", self.blend)
            self._outcome = Outcome(result, error)
            self.done.set()


def follow(
    runner: SubmissionRunner, on_tick: Callable[[bool], None], *, poll_s: float
) -> Outcome:
    """Start ``runner`` and call ``on_tick(finished)`` on this thread every ``poll_s``
    until it has finished (the last call has ``finished`` True: take every event left).

    Ctrl-C (KeyboardInterrupt) here cancels the submission and waits for it to end.
    """
    runner.start()
    try:
        while True:
            finished = runner.done.wait(poll_s)
            on_tick(finished)
            if finished:
                break
    except KeyboardInterrupt:
        runner.cancel()
        runner.join()
        on_tick(True)
    return runner.outcome


def check_server(url: str, settings: ClientSettings) -> ServerCheck:
    """Ask the server once what it is (the "Check server" button, ``check``); the
    answer says what failed, only a bad URL raises."""
    from ..shaman.client import ShamanClient

    client = ShamanClient(url, settings)
    try:
        return client.check()
    finally:
        client.close()
