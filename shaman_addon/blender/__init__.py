"""The Blender layer: the only part of Shaman Submitter that imports ``bpy``.

The extension's top-level ``__init__`` calls ``register(__package__)``. The modules that
import ``bpy`` are imported here, inside ``register``, so the bpy-free helpers in this
package (``job``, ``tempcopies``) stay importable on plain Python.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

UNREGISTER_JOIN_S = 3.0
"""How long unregister waits for a cancelled worker before leaving it (a daemon)."""

_registered = False


def register(package: str) -> None:
    """Register everything; ``package`` is the extension's ``__package__`` (prefs id)."""
    global _registered
    from . import handlers, job_choice, operators, panels, preferences, prepare, properties

    preferences.set_package(package)
    preferences.register()
    properties.register()
    job_choice.register()
    operators.register()
    panels.register()
    handlers.register()
    _registered = True
    try:
        removed = prepare.ledger().cleanup_leftovers()
    except OSError as exc:  # a start must never fail over a leftover file
        log.warning("could not clean up temporary copies left by a crash: %s", exc)
    else:
        for path in removed:
            log.info("removed a temporary copy left by a crash: %s", path)
    import bpy

    try:
        job_choice.reload(bpy.context)
    except (AttributeError, RuntimeError) as exc:  # a restricted context at start-up
        log.debug("the render job choice is loaded with the first file: %s", exc)


def unregister() -> None:
    """Remove handlers, timers and classes; cancel a running submission and wait briefly."""
    global _registered
    if not _registered:
        return
    from . import handlers, job, job_choice, operators, panels, preferences, properties

    handlers.unregister()
    running = job.cancel_active(wait_s=UNREGISTER_JOIN_S)
    if running is not None:
        handlers.remove_timer(running)
    panels.unregister()
    operators.unregister()
    job_choice.unregister()
    properties.unregister()
    preferences.unregister()
    _registered = False
