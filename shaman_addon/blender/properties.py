"""Property groups: the live state of a submission as the panel shows it.

Registered on the window manager (``bpy.types.WindowManager.shaman``): it belongs to the
session, not to the artist's scene. The progress properties are made from the fields of
``app.progress_view.ProgressView`` (the one declaration of what the UI shows of a
progress event); the result properties hold a ``present.ResultView``: its first
``present.LIST_SHOWN`` missing files and warnings, the counts, and where the whole lists
are, so storing and drawing a result costs the same for 10 or 10,000 missing files. The
main thread is the only writer; the worker never touches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..app.present import LIST_SHOWN, ResultView, job_lines
from ..app.progress_view import ProgressView
from ..errors import JobNotSubmitted
from ..jobs.request import SubmittedJob

_PROPERTY_FOR: dict[type, Callable[..., Any]] = {
    str: StringProperty, int: IntProperty, float: FloatProperty, bool: BoolProperty,
}


def progress_properties() -> dict[str, Any]:
    """A bpy property for each ``ProgressView`` field: its type from the field's default,
    its options from the field's metadata."""
    return {
        f.name: _PROPERTY_FOR[type(f.default)](**dict(f.metadata)) for f in fields(ProgressView)
    }


class SHAMAN_PG_missing(bpy.types.PropertyGroup):  # noqa: N801 (Blender naming)
    """One missing dependency and what references it."""

    path: StringProperty(name="Path")  # type: ignore[valid-type]
    referenced_by: StringProperty(name="Referenced by")  # type: ignore[valid-type]


class SHAMAN_PG_state(bpy.types.PropertyGroup):  # noqa: N801 (Blender naming)
    """What the Shaman panel shows: live progress, then the last result.

    The progress properties (``ProgressView``'s fields) are added below the class.
    """

    running: BoolProperty(name="Running", default=False)  # type: ignore[valid-type]
    cancel_requested: BoolProperty(default=False)  # type: ignore[valid-type]

    # the last result (dry run or submission)
    has_result: BoolProperty(default=False)  # type: ignore[valid-type]
    result_ok: BoolProperty(default=False)  # type: ignore[valid-type]
    result_dry_run: BoolProperty(default=False)  # type: ignore[valid-type]
    error: StringProperty(name="Error")  # type: ignore[valid-type]
    checkout_path: StringProperty(name="Checkout")  # type: ignore[valid-type]
    worker_path: StringProperty(name="Workers open")  # type: ignore[valid-type]
    total_text: StringProperty()  # type: ignore[valid-type]
    uploaded_text: StringProperty()  # type: ignore[valid-type]
    stored_text: StringProperty()  # type: ignore[valid-type]
    warnings_text: StringProperty()  # type: ignore[valid-type]
    more_warnings: StringProperty()  # type: ignore[valid-type]
    # the first present.LIST_SHOWN missing files only: filling and drawing a collection
    # of thousands would stall the main thread; the rest are counted and named elsewhere
    missing: CollectionProperty(type=SHAMAN_PG_missing)  # type: ignore[valid-type]
    missing_total: IntProperty(name="Missing files", min=0)  # type: ignore[valid-type]
    more_missing: StringProperty()  # type: ignore[valid-type]
    # the render job of the last result (job_id '' = checkout only)
    job_id: StringProperty(name="Job")  # type: ignore[valid-type]
    job_name: StringProperty(name="Job name")  # type: ignore[valid-type]
    job_status: StringProperty(name="Job status")  # type: ignore[valid-type]
    job_url: StringProperty(name="Job page")  # type: ignore[valid-type]
    job_text: StringProperty()  # type: ignore[valid-type]
    kept_checkout: StringProperty(  # type: ignore[valid-type]
        name="Checkout kept", description="The checkout a failed render job left on the server"
    )
    show_missing: BoolProperty(  # type: ignore[valid-type]
        name="Show missing files", default=False
    )

    # reading the Manager's job types (the Render job section's Refresh)
    job_types_refreshing: BoolProperty(default=False)  # type: ignore[valid-type]
    job_types_error: StringProperty()  # type: ignore[valid-type]

    # the server check (preferences button)
    server_check_text: StringProperty()  # type: ignore[valid-type]
    server_check_ok: BoolProperty(default=False)  # type: ignore[valid-type]
    server_check_running: BoolProperty(default=False)  # type: ignore[valid-type]


SHAMAN_PG_state.__annotations__.update(progress_properties())


def reset_progress(state: Any) -> None:
    """Blank the live part before a new submission."""
    ProgressView().apply_to(state)


def reset_result(state: Any) -> None:
    state.has_result = False
    state.result_ok = False
    state.result_dry_run = False
    state.error = ""
    state.checkout_path = ""
    state.worker_path = ""
    state.total_text = ""
    state.uploaded_text = ""
    state.stored_text = ""
    state.warnings_text = state.more_warnings = state.more_missing = ""
    state.missing_total = 0
    state.job_id = state.job_name = state.job_status = state.job_url = state.job_text = ""
    state.kept_checkout = ""
    state.missing.clear()
    state.show_missing = False


def store_result(state: Any, view: ResultView) -> None:
    """Copy a result's view onto the property group."""
    reset_result(state)
    state.has_result = True
    state.result_ok = True
    state.result_dry_run = view.dry_run
    state.checkout_path = view.checkout_path
    state.worker_path = view.worker_path
    state.total_text = view.total_text
    state.uploaded_text = view.uploaded_text
    state.stored_text = view.stored_text
    state.warnings_text = "\n".join(view.warnings)
    state.more_warnings = view.more_warnings
    for row in view.missing[:LIST_SHOWN]:  # the view holds no more: bounded twice
        item = state.missing.add()
        item.path = row.path
        item.referenced_by = row.referenced_by
    state.missing_total = view.missing_total
    state.more_missing = view.more_missing


def store_error(state: Any, message: str) -> None:
    reset_result(state)
    state.has_result = True
    state.result_ok = False
    state.error = message


def store_job(state: Any, job: SubmittedJob | None) -> None:
    """The render job the Manager accepted (nothing for a checkout only)."""
    if job is None:
        return
    state.job_id, state.job_name = job.id, job.name
    state.job_status, state.job_url = job.status, job.url
    state.job_text = "\n".join(job_lines(job))


def store_kept_checkout(state: Any, error: BaseException | None) -> None:
    """A render job that failed after the checkout: where the files are."""
    if isinstance(error, JobNotSubmitted):
        state.kept_checkout = error.checkout_path


def state_of(context: Any) -> Any:
    """The session's state on the window manager (None while unregistered)."""
    wm = getattr(context, "window_manager", None)
    return getattr(wm, "shaman", None) if wm is not None else None


CLASSES = (SHAMAN_PG_missing, SHAMAN_PG_state)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    wm_type: Any = bpy.types.WindowManager
    wm_type.shaman = PointerProperty(type=SHAMAN_PG_state)  # type: ignore[func-returns-value]


def unregister() -> None:
    wm_type: Any = bpy.types.WindowManager
    if hasattr(wm_type, "shaman"):
        del wm_type.shaman
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
