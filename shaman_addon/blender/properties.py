"""Property groups: the live state of a submission as the panel shows it.

Registered on the window manager (``bpy.types.WindowManager.shaman``): it belongs to the
session, not to the artist's scene. Byte counts are kept as text because Blender's
IntProperty is 32-bit. The main thread is the only writer; the worker never touches it.
"""

from __future__ import annotations

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

from ..app.ui_state import ProgressView


class SHAMAN_PG_missing(bpy.types.PropertyGroup):  # noqa: N801 (Blender naming)
    """One missing dependency and what references it."""

    path: StringProperty(name="Path")  # type: ignore[valid-type]
    referenced_by: StringProperty(name="Referenced by")  # type: ignore[valid-type]


class SHAMAN_PG_state(bpy.types.PropertyGroup):  # noqa: N801 (Blender naming)
    """What the Shaman panel shows: live progress, then the last result."""

    # live progress (ui_state.progress_fields fills exactly these)
    running: BoolProperty(name="Running", default=False)  # type: ignore[valid-type]
    cancel_requested: BoolProperty(default=False)  # type: ignore[valid-type]
    phase: StringProperty(name="Phase")  # type: ignore[valid-type]
    fraction: FloatProperty(  # type: ignore[valid-type]
        name="Progress", min=0.0, max=1.0, subtype="FACTOR"
    )
    files_done: IntProperty(name="Files done", min=0)  # type: ignore[valid-type]
    files_total: IntProperty(name="Files", min=0)  # type: ignore[valid-type]
    bytes_text: StringProperty()  # type: ignore[valid-type]
    speed_text: StringProperty()  # type: ignore[valid-type]
    eta_text: StringProperty()  # type: ignore[valid-type]
    current_file: StringProperty()  # type: ignore[valid-type]
    bar_text: StringProperty()  # type: ignore[valid-type]
    status_line: StringProperty()  # type: ignore[valid-type]
    message: StringProperty()  # type: ignore[valid-type]

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
    missing: CollectionProperty(type=SHAMAN_PG_missing)  # type: ignore[valid-type]
    show_missing: BoolProperty(  # type: ignore[valid-type]
        name="Show missing files", default=False
    )

    # the server check (preferences button)
    server_check_text: StringProperty()  # type: ignore[valid-type]
    server_check_ok: BoolProperty(default=False)  # type: ignore[valid-type]
    server_check_running: BoolProperty(default=False)  # type: ignore[valid-type]


PROGRESS_NAMES = tuple(ProgressView.__dataclass_fields__)


def reset_progress(state: Any) -> None:
    """Blank the live part before a new submission."""
    blank = ProgressView()
    for name in PROGRESS_NAMES:
        setattr(state, name, getattr(blank, name))


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
    state.warnings_text = ""
    state.missing.clear()
    state.show_missing = False


def store_result(state: Any, fields: dict[str, Any]) -> None:
    """Copy ``ui_state.result_fields`` output onto the property group."""
    reset_result(state)
    state.has_result = True
    state.result_ok = True
    state.result_dry_run = fields["dry_run"]
    state.checkout_path = fields["checkout_path"]
    state.worker_path = fields["worker_path"]
    state.total_text = fields["total_text"]
    state.uploaded_text = fields["uploaded_text"]
    state.stored_text = fields["stored_text"]
    state.warnings_text = "\n".join(fields["warnings"])
    for row in fields["missing"]:
        item = state.missing.add()
        item.path = row.path
        item.referenced_by = row.referenced_by


def store_error(state: Any, message: str) -> None:
    reset_result(state)
    state.has_result = True
    state.result_ok = False
    state.error = message


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
