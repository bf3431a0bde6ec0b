"""A submission of this Blender session, and the rule of one at a time.

``SubmitJob`` is the application layer's runner plus what only Blender needs: a label
for the panel, the modal operator's timer, and the temporary copy of unsaved work,
removed on the worker when the submission ends (plain file operations; nothing here
touches ``bpy``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..app.runner import SubmissionRunner
from ..errors import Busy
from . import tempcopies

if TYPE_CHECKING:
    from ..submit import SubmitOptions

log = logging.getLogger(__name__)

_active_lock = threading.Lock()
_active: SubmitJob | None = None


class SubmitJob(SubmissionRunner):
    """One submission run on a daemon thread, named after the artist's file."""

    def __init__(self, blend: Path, options: SubmitOptions, *, label: str = "") -> None:
        self.label = label or blend.name
        super().__init__(blend, options, thread_name=f"shaman-submit-{self.label}")
        self.temp_copy: Path | None = None
        self.ledger: tempcopies.Ledger | None = None
        self.timer: Any = None  # the window-manager timer of the modal operator, if any

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run

    def send_copy(self, copy: Path, ledger: tempcopies.Ledger) -> None:
        """Submit ``copy`` (of unsaved work) under the original's name, and remove it
        when the submission ends. Only before ``start``."""
        self.temp_copy, self.ledger = copy, ledger
        self.options = replace(self.options, as_name=self.blend.name)
        self.blend = copy

    def cleanup(self) -> None:
        """On the worker: remove the temporary copy, free the session's slot."""
        if self.temp_copy is not None:
            tempcopies.remove_copy(self.temp_copy, self.ledger)
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
        if current is not None and current is not job and not current.done.is_set():
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
