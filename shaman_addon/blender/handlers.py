"""Application handlers: stop a submission when another file is opened, start clean.

``load_pre`` is persistent (it must survive the very file load it reacts to). It
cancels the running submission and removes its timer while the window manager that
owns the timer still exists; the worker then ends on its own and removes its
temporary copy. ``load_post`` clears state a saved file may carry (the property group
lives on the window manager, which is saved in .blend files).
"""

from __future__ import annotations

import logging
from typing import Any

import bpy
from bpy.app.handlers import persistent

from . import job as jobs
from . import properties

log = logging.getLogger(__name__)


_cancelled_by_load: jobs.SubmitJob | None = None


@persistent
def on_load_pre(*_args: Any) -> None:
    global _cancelled_by_load
    job = jobs.cancel_active()
    if job is None:
        return
    log.info("another file is being opened: the submission of %s was cancelled", job.label)
    _cancelled_by_load = job
    remove_timer(job)


def remove_timer(job: jobs.SubmitJob) -> None:
    """Remove the modal operator's window-manager timer of ``job``, if it still has one."""
    if job.timer is None:
        return
    wm = bpy.context.window_manager
    try:
        if wm is not None:
            wm.event_timer_remove(job.timer)
    except (AttributeError, ReferenceError, RuntimeError, ValueError) as exc:
        log.debug("timer already gone: %s", exc)
    job.timer = None


@persistent
def on_load_post(*_args: Any) -> None:
    """Nobody follows a job across a file load (its modal operator is gone): say so."""
    global _cancelled_by_load
    from . import job_choice

    job_choice.reload(bpy.context)  # the render job choice remembered for this file
    state = properties.state_of(bpy.context)
    job, _cancelled_by_load = _cancelled_by_load, None
    if state is None:
        return
    state.running = False
    state.cancel_requested = False
    if job is not None:
        properties.store_error(
            state, f"The submission of {job.label} was cancelled because another file was opened."
        )
        state.phase = "cancelled"


HANDLERS = (
    (bpy.app.handlers.load_pre, on_load_pre),
    (bpy.app.handlers.load_post, on_load_post),
)


def register() -> None:
    for handler_list, fn in HANDLERS:
        if fn not in handler_list:
            handler_list.append(fn)


def unregister() -> None:
    for handler_list, fn in HANDLERS:
        while fn in handler_list:
            handler_list.remove(fn)
