"""Every operator of the extension, registered together, and the small ones.

The submit and cancel operators live in ``submit_ops``, the server check in
``check_ops``, the job types' Refresh in ``job_panel``; this module adds copying a path
to the clipboard and registers them.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import StringProperty

from . import check_ops, job_panel, prepare, submit_ops
from .submit_ops import OpResult


class SHAMAN_OT_copy_text(bpy.types.Operator):  # noqa: N801 (Blender naming)
    """Copy this path to the clipboard"""

    bl_idname = "shaman.copy_text"
    bl_label = "Copy"
    bl_options = {"INTERNAL"}  # noqa: RUF012

    text: StringProperty(options={"SKIP_SAVE"})  # type: ignore[valid-type]

    def execute(self, context: Any) -> OpResult:
        context.window_manager.clipboard = self.text
        self.report({"INFO"}, f"Copied {self.text}")
        return {"FINISHED"}


CLASSES = (*submit_ops.CLASSES, *check_ops.CLASSES, *job_panel.CLASSES, SHAMAN_OT_copy_text)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    if bpy.app.timers.is_registered(prepare.keep_unsaved_mark):
        bpy.app.timers.unregister(prepare.keep_unsaved_mark)
    check_ops.unregister_timers()
    job_panel.unregister_timers()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
