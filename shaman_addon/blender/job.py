"""One submission running on a worker thread, and the rule of one at a time.

Nothing here touches ``bpy``: the worker only runs the pipeline, fills the progress
queue, removes its temporary copy and leaves a plain ``SubmissionOutcome`` for the main
thread to read. The thread is a daemon so it never keeps Blender from quitting.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..app.ui_state import SubmissionOutcome, error_text
from ..errors import Busy, Cancelled, ShamanError
from . import tempcopies

log = logging.getLogger(__name__)

_active_lock = threading.Lock()
_active: SubmitJob | None = None


class SubmitJob:
    """The pipeline for one .blend, run on a daemon thread."""

    def __init__(
        self,
        blend: Path,
        options: Any,
        *,
        temp_copy: Path | None = None,
        ledger: tempcopies.Ledger | None = None,
        label: str = "",
        submission_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.blend = blend
        self.options = options
        self.temp_copy = temp_copy
        self.ledger = ledger
        self.label = label or blend.name
        self.dry_run = bool(getattr(options, "dry_run", False))
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.cancel_event = threading.Event()
        self.done = threading.Event()
        self.outcome: SubmissionOutcome | None = None
        self.timer: Any = None  # the window-manager timer of the modal operator, if any
        self._factory = submission_factory
        self._submission: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"shaman-submit-{self.label}", daemon=True
        )

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Ask the pipeline to stop; safe from any thread, any number of times."""
        self.cancel_event.set()
        sub = self._submission
        if sub is not None:
            try:
                sub.cancel()
            except Exception:  # cancelling must never raise into Blender's handlers
                log.exception("cancelling the submission failed")

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; True when it has finished."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return self.done.is_set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the worker ---------------------------------------------------------------------
    def _make_submission(self) -> Any:
        if self._factory is not None:
            return self._factory(
                self.blend, self.options, events=self.events, cancel=self.cancel_event
            )
        from ..submit import Submission

        return Submission(self.blend, self.options, events=self.events, cancel=self.cancel_event)

    def _run(self) -> None:
        outcome = SubmissionOutcome()
        try:
            if self.cancel_event.is_set():
                raise Cancelled("The submission was cancelled before it started.")
            self._submission = self._make_submission()
            if self.cancel_event.is_set():
                self._submission.cancel()
            outcome.result = self._submission.run()
        except Cancelled as exc:
            outcome.cancelled = True
            outcome.error = str(exc) or "The submission was cancelled."
            outcome.error_type = type(exc).__name__
        except BaseException as exc:  # the worker must always hand back an outcome
            if not isinstance(exc, ShamanError):
                log.exception("the submission of %s failed unexpectedly", self.blend)
            outcome.error = error_text(exc)
            outcome.error_type = type(exc).__name__
        finally:
            if self.temp_copy is not None:
                tempcopies.remove_copy(self.temp_copy, self.ledger)
            self.outcome = outcome
            self.done.set()
            release(self)


# -- one at a time ------------------------------------------------------------------------


def active() -> SubmitJob | None:
    """The running submission of this session, if any."""
    with _active_lock:
        return _active if _active is not None and not _active.done.is_set() else None


def claim(job: SubmitJob) -> None:
    """Make ``job`` the session's submission; Busy when another one is still running."""
    global _active
    with _active_lock:
        current = _active
        if current is not None and not current.done.is_set():
            raise Busy(
                f"A submission of {current.label} is still running; wait for it to finish "
                "or cancel it (Properties > Render > Shaman > Cancel) before starting another."
            )
        _active = job


def release(job: SubmitJob) -> None:
    global _active
    with _active_lock:
        if _active is job:
            _active = None


def cancel_active(*, wait_s: float = 0.0) -> SubmitJob | None:
    """Cancel the running submission (file load, quit, unregister); optionally wait."""
    job = active()
    if job is None:
        return None
    log.info("cancelling the running submission of %s", job.label)
    job.cancel()
    if wait_s > 0:
        job.join(wait_s)
    return job
