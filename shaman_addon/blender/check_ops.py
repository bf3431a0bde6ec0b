"""The Check Server button: ask the server what it is without freezing the UI.

The question runs on a worker thread (plain Python: the application layer's
``check_server``); a ``bpy.app.timers`` callback copies the answer into the property
group on the main thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import bpy
from bpy.props import StringProperty

from ..app import present
from ..app import settings as app_settings
from ..app.runner import check_server
from ..errors import ShamanError
from . import preferences, prepare, properties
from .submit_ops import OpResult, tag_redraw

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 5.0
"""The Check server button waits at most this long for an answer."""


def ask(url: str, settings: app_settings.Settings) -> tuple[bool, str]:
    """(ok, sentence) about the server at ``url``; never raises (runs on a worker)."""
    try:
        answer = check_server(
            url, app_settings.client_settings(settings, request_timeout=CHECK_TIMEOUT_S)
        )
    except ShamanError as exc:
        return False, str(exc)
    except Exception as exc:  # the button must answer, never raise into the UI
        log.exception("checking %s failed", url)
        return False, present.error_text(exc)
    return bool(answer.ok), str(answer.message)


_check_thread: threading.Thread | None = None
_check_answer: tuple[bool, str] | None = None


def _check_timer() -> float | None:
    """bpy.app.timers callback: copy the finished check into the state on the main thread."""
    global _check_thread, _check_answer
    if _check_thread is not None and _check_thread.is_alive():
        return 0.1
    answer = _check_answer or (False, "The server check ended without an answer.")
    _check_thread, _check_answer = None, None
    state = properties.state_of(bpy.context)
    if state is not None:
        state.server_check_running = False
        state.server_check_ok, state.server_check_text = answer
    tag_redraw(bpy.context)
    return None


class SHAMAN_OT_check_server(bpy.types.Operator):  # noqa: N801 (Blender naming)
    """Ask the server whether it is a Flamenco Manager with Shaman enabled"""

    bl_idname = "shaman.check_server"
    bl_label = "Check Server"
    bl_options = {"REGISTER"}  # noqa: RUF012

    server_url: StringProperty(  # type: ignore[valid-type]
        name="Server URL", default="", options={"SKIP_SAVE"}
    )

    def _url(self, context: Any) -> tuple[str, app_settings.Settings] | None:
        settings = preferences.read(context)
        try:
            return prepare.resolve_server_url(self.server_url, settings), settings
        except ShamanError as exc:
            state = properties.state_of(context)
            if state is not None:
                state.server_check_ok, state.server_check_text = False, str(exc)
            self.report({"ERROR"}, str(exc))
            return None

    def execute(self, context: Any) -> OpResult:
        resolved = self._url(context)
        if resolved is None:
            return {"CANCELLED"}
        ok, text = ask(*resolved)
        state = properties.state_of(context)
        if state is not None:
            state.server_check_ok, state.server_check_text = ok, text
        self.report({"INFO"} if ok else {"ERROR"}, text)
        return {"FINISHED"} if ok else {"CANCELLED"}

    def invoke(self, context: Any, event: Any) -> OpResult:
        global _check_thread, _check_answer
        if bpy.app.background:
            return self.execute(context)
        if _check_thread is not None and _check_thread.is_alive():
            self.report({"INFO"}, "The server check is still running.")
            return {"CANCELLED"}
        resolved = self._url(context)
        if resolved is None:
            return {"CANCELLED"}

        def work() -> None:
            global _check_answer
            _check_answer = ask(*resolved)

        state = properties.state_of(context)
        if state is not None:
            state.server_check_running = True
            state.server_check_text = ""
        _check_answer = None
        _check_thread = threading.Thread(target=work, name="shaman-check-server", daemon=True)
        _check_thread.start()
        bpy.app.timers.register(_check_timer, first_interval=0.1)
        return {"FINISHED"}


CLASSES = (SHAMAN_OT_check_server,)


def unregister_timers() -> None:
    """Stop following a running check and wait for it briefly (the add-on goes away)."""
    global _check_thread
    if bpy.app.timers.is_registered(_check_timer):
        bpy.app.timers.unregister(_check_timer)
    if _check_thread is not None:
        _check_thread.join(CHECK_TIMEOUT_S + 1)
        _check_thread = None
