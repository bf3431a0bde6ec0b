"""The Render job section of the Shaman panel, its Refresh button, and the job's result.

Drawing reads only the session: the choice, the generated property groups and the
Manager info loaded from the cache (``job_choice``); it never touches the network. The
automatic values shown (closed locks, read-only settings) are the job type's
expressions evaluated with ``bpy`` on the main thread, as the submission will. Refresh
reads the Manager on a worker thread (plain Python, no ``bpy``); a timer loads the
answer on the main thread.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import bpy

from ..app import jobs as app_jobs
from ..app import present
from ..errors import ShamanError
from ..jobs import expressions
from ..jobs.types import JobSetting, JobType
from ..submit.checkout_name import render_job_name
from . import job_choice, preferences, prepare, properties
from .job_props import group_of, is_automatic, lock_name
from .submit_ops import OpResult, tag_redraw

log = logging.getLogger(__name__)

REFRESH_TIMEOUT_S = 10.0
"""Reading the job types waits at most this long for each answer."""


# -- drawing ------------------------------------------------------------------------------


def automatic_values(context: Any, job_type: JobType) -> tuple[dict[str, Any], str]:
    """The values the submission would send now, and the sentence of a failure ('')."""
    choice = job_choice.panel_choice(context)
    blend = Path(bpy.data.filepath or "untitled.blend")
    try:
        jobname = render_job_name(choice.name, blend_name=blend.name)
        values = expressions.evaluate_settings(
            job_type, context=context, bpy_module=bpy, jobname=jobname, blendfile=blend,
            given=choice.given,
        )
    except ShamanError as exc:
        return {}, str(exc)
    except Exception as exc:  # drawing must never raise
        log.debug("evaluating %s for the panel failed", job_type.name, exc_info=True)
        return {}, present.error_text(exc)
    return values, ""


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def draw_setting(
    layout: Any, setting: JobSetting, name: str, group: Any, auto: dict[str, Any]
) -> None:
    """One setting: editable; greyed (read-only, or automatic with its value shown); with
    a lock when the job type offers the choice."""
    row = layout.row(align=True)
    automatic = is_automatic(setting, group, name)
    if automatic or not setting.editable:
        sub = row.row(align=True)
        sub.enabled = False
        if automatic:
            sub.label(text=f"{setting.title}: {_shown(auto.get(setting.key))}")
        else:
            sub.prop(group, name, text=setting.title)
    else:
        row.prop(group, name, text=setting.title)
    if setting.eval and setting.show_link_button:
        locked = bool(getattr(group, lock_name(name)))
        row.prop(group, lock_name(name), text="", icon="LOCKED" if locked else "UNLOCKED")


def _draw_source(layout: Any, state: Any) -> None:
    info = job_choice.current_info()
    if state is not None and state.job_types_refreshing:
        layout.label(text="Reading the Manager's job types...", icon="SORTTIME")
    elif state is not None and state.job_types_error:
        from .panels import wrapped

        wrapped(layout, state.job_types_error, icon="ERROR")
    elif info is None:
        layout.label(text="Refresh to read the Manager's job types.", icon="INFO")


def draw_render_job(layout: Any, context: Any) -> None:
    """The Render job section: the menu, Refresh, the choice and the job type's settings."""
    props = job_choice.choice_of(context)
    if props is None:
        return
    state = properties.state_of(context)
    box = layout.box()
    row = box.row(align=True)
    row.prop(props, "job_type", text="Render job")
    row.operator("shaman.refresh_job_types", text="", icon="FILE_REFRESH")
    _draw_source(box, state)
    if props.job_type in ("", job_choice.NONE):
        return
    found = group_of(context, props.job_type)
    if found is None or found[1] is None:
        box.label(text="This job type is not known yet: Refresh.", icon="ERROR")
        return
    gen, group = found
    col = box.column()
    col.prop(props, "job_name", text="Job name")
    col.prop(props, "priority", text="Priority")
    col.prop(props, "worker_tag", text="Worker tag")
    col.prop(props, "paused", text="Submit paused")
    auto, failure = automatic_values(context, gen.job_type)
    for setting in gen.job_type.settings:
        name = gen.names.get(setting.key)
        if name is not None:
            draw_setting(col, setting, name, group, auto)
    if failure:
        from .panels import wrapped

        wrapped(box, failure, icon="ERROR")


def draw_job_result(layout: Any, state: Any) -> None:
    """The submitted job (id, status, page with Copy and Open), or the checkout a failed
    job left behind."""
    if state.kept_checkout:
        row = layout.row(align=True)
        row.label(text=f"Checkout kept: {state.kept_checkout}", icon="FILE_FOLDER")
        row.operator("shaman.copy_text", text="", icon="COPYDOWN").text = state.kept_checkout
    if not state.job_id:
        return
    for i, line in enumerate(state.job_text.splitlines()):
        layout.label(text=line, icon="RENDER_ANIMATION" if i == 0 else "NONE")
    row = layout.row(align=True)
    row.operator("shaman.copy_text", text="Copy", icon="COPYDOWN").text = state.job_url
    row.operator("wm.url_open", text="Open", icon="URL").url = state.job_url


# -- Refresh ------------------------------------------------------------------------------

_thread: threading.Thread | None = None
_answer: str | None = None


def fetch(url: str, settings: Any, names: Any, cache: Path, online: bool) -> str:
    """Read the Manager's job types into the cache; the failure's sentence, or ''.
    Runs on a worker thread: plain Python, never raises."""
    try:
        app_jobs.manager_info(url, settings, names, cache_dir=cache, refresh=True,
                              online_access=online)
    except ShamanError as exc:
        return str(exc)
    except Exception as exc:  # the button must answer, never raise into the UI
        log.exception("reading the job types of %s failed", url)
        return present.error_text(exc)
    return ""


def _apply(answer: str) -> None:
    state = properties.state_of(bpy.context)
    if state is not None:
        state.job_types_refreshing = False
        state.job_types_error = answer
    job_choice.reload(bpy.context)
    tag_redraw(bpy.context)


def _timer() -> float | None:
    """bpy.app.timers: load the fetched job types on the main thread."""
    global _thread, _answer
    if _thread is not None and _thread.is_alive():
        return 0.1
    answer = _answer if _answer is not None else "Reading the job types ended without an answer."
    _thread, _answer = None, None
    _apply(answer)
    return None


class SHAMAN_OT_refresh_job_types(bpy.types.Operator):  # noqa: N801 (Blender naming)
    """Read the Manager's job types and worker tags again"""

    bl_idname = "shaman.refresh_job_types"
    bl_label = "Refresh Job Types"
    bl_options = {"REGISTER"}  # noqa: RUF012

    def _request(self, context: Any) -> tuple[Any, ...] | None:
        settings = preferences.read(context)
        try:
            url = prepare.resolve_server_url("", settings)
        except ShamanError as exc:
            self.report({"ERROR"}, str(exc))
            _apply(str(exc))
            return None
        from dataclasses import replace

        from ..app.settings import BLENDER_NAMES

        settings = replace(settings, server_url=url, request_timeout=min(
            settings.request_timeout, REFRESH_TIMEOUT_S))
        return url, settings, BLENDER_NAMES, prepare.cache_dir(), bool(bpy.app.online_access)

    def execute(self, context: Any) -> OpResult:
        request = self._request(context)
        if request is None:
            return {"CANCELLED"}
        answer = fetch(*request)
        _apply(answer)
        if answer:
            self.report({"ERROR"}, answer)
            return {"CANCELLED"}
        return {"FINISHED"}

    def invoke(self, context: Any, event: Any) -> OpResult:
        global _thread, _answer
        if bpy.app.background:
            return self.execute(context)
        if _thread is not None and _thread.is_alive():
            return {"CANCELLED"}
        request = self._request(context)
        if request is None:
            return {"CANCELLED"}

        def work() -> None:
            global _answer
            _answer = fetch(*request)

        state = properties.state_of(context)
        if state is not None:
            state.job_types_refreshing, state.job_types_error = True, ""
        _answer = None
        _thread = threading.Thread(target=work, name="shaman-job-types", daemon=True)
        _thread.start()
        bpy.app.timers.register(_timer, first_interval=0.1)
        return {"FINISHED"}


CLASSES = (SHAMAN_OT_refresh_job_types,)


def unregister_timers() -> None:
    global _thread
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
    if _thread is not None:
        _thread.join(REFRESH_TIMEOUT_S + 1)
        _thread = None
