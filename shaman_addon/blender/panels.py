"""Properties > Render > Shaman: where the artist submits and follows a submission.

Drawing only reads: the preferences, the property group the modal operator fills, and
plain helpers from ``ui_state``. Nothing here talks to the server.
"""

from __future__ import annotations

import textwrap
from typing import Any

import bpy

from ..app import ui_state
from ..units import format_count
from . import job as jobs
from . import job_panel, preferences, properties

WRAP = 60


def wrapped(layout: Any, text: str, icon: str = "NONE") -> None:
    """Labels do not wrap: split long sentences over several rows (never inside a
    hyphenated file name, so a path stays whole and can be read or searched)."""
    col = layout.column(align=True)
    for i, line in enumerate(textwrap.wrap(text, WRAP, break_on_hyphens=False) or [""]):
        col.label(text=line, icon=icon if i == 0 else "BLANK1")


def _path_row(layout: Any, label: str, value: str) -> None:
    row = layout.row(align=True)
    row.label(text=f"{label}:")
    row = layout.row(align=True)
    row.label(text=value)
    op = row.operator("shaman.copy_text", text="", icon="COPYDOWN")
    op.text = value


class SHAMAN_PT_render(bpy.types.Panel):  # noqa: N801 (Blender naming)
    bl_label = "Shaman"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"

    def draw(self, context: Any) -> None:
        layout: Any = self.layout
        prefs = preferences.get(context)
        state = properties.state_of(context)
        settings = preferences.read(context)

        col = layout.column()
        if prefs is not None:
            col.prop(prefs, "server_url", text="Server")
        preview = ui_state.checkout_preview(settings.checkout_template, bpy.data.filepath)
        col.label(text=f"Checkout: {preview}", icon="FILE_FOLDER")

        for warning in ui_state.render_output_warnings(context.scene.render.filepath):
            wrapped(layout.box(), warning, icon="ERROR")
        if bpy.data.filepath and bpy.data.is_dirty:
            layout.label(text="Unsaved changes are sent as a temporary copy.", icon="INFO")

        job_panel.draw_render_job(layout, context)

        running = jobs.active()
        if running is not None and state is not None:
            self._draw_running(layout, state, running)
        else:
            row = layout.row(align=True)
            op = row.operator("shaman.submit", text="Check Dependencies", icon="VIEWZOOM")
            op.dry_run = True
            op.use_panel_choice = True
            row = layout.row()
            row.scale_y = 1.4
            op = row.operator("shaman.submit", text="Submit to Shaman", icon="EXPORT")
            op.use_panel_choice = True

        if state is not None and state.has_result and running is None:
            self._draw_result(layout, state)

    @staticmethod
    def _draw_running(layout: Any, state: Any, running: jobs.SubmitJob) -> None:
        box = layout.box()
        title = "Checking dependencies" if running.dry_run else "Submitting"
        box.label(text=f"{title}: {running.label}", icon="SORTTIME")
        box.progress(factor=state.fraction, type="BAR", text=state.bar_text or "Starting...")
        if state.status_line:
            box.label(text=state.status_line)
        if state.current_file:
            box.label(text=state.current_file, icon="FILE")
        if state.cancel_requested:
            box.label(text="Cancelling...", icon="CANCEL")
        else:
            box.operator("shaman.cancel", text="Cancel (Esc)", icon="CANCEL")

    @staticmethod
    def _draw_result(layout: Any, state: Any) -> None:
        box = layout.box()
        if not state.result_ok:
            cancelled = state.phase == "cancelled"
            wrapped(box, state.error, icon="CANCEL" if cancelled else "ERROR")
            job_panel.draw_job_result(box, state)
            return
        if state.result_dry_run:
            box.label(text="Dependencies", icon="CHECKMARK")
            box.label(text=f"Total: {state.total_text}")
            box.label(text=f"Already on the server: {state.stored_text}")
            box.label(text=f"To upload: {state.uploaded_text}")
        else:
            box.label(text="Submitted", icon="CHECKMARK")
            _path_row(box, "Checkout", state.checkout_path)
            _path_row(box, "Workers open", state.worker_path)
            box.label(text=f"Uploaded: {state.uploaded_text}")
            box.label(text=f"Already on the server: {state.stored_text}")
            job_panel.draw_job_result(box, state)
        for warning in state.warnings_text.splitlines():
            wrapped(box, warning, icon="ERROR")
        if state.more_warnings:
            wrapped(box, state.more_warnings)
        if state.missing_total:
            _draw_missing(box, state)


def _draw_missing(box: Any, state: Any) -> None:
    """The missing files' toggle and, open, the few stored (``present.LIST_SHOWN``)."""
    box.row().prop(
        state,
        "show_missing",
        text=f"Missing files: {format_count(state.missing_total)}",
        icon="TRIA_DOWN" if state.show_missing else "TRIA_RIGHT",
        emboss=False,
    )
    if not state.show_missing:
        return
    col = box.column(align=True)
    for item in state.missing:
        col.label(text=item.path, icon="LIBRARY_DATA_BROKEN")
        col.label(text=f"    used by {item.referenced_by or '?'}")
    if state.more_missing:
        wrapped(col, state.more_missing)

CLASSES = (SHAMAN_PT_render,)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
