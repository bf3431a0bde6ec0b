"""Operators: submit (UI and headless), cancel, check the server, copy a path.

Thin on purpose: the pipeline does the work on a worker thread; these only read the
preferences, prepare the file (a temporary copy of unsaved work), start the job and copy
plain results into the property group on the main thread. No ``bpy`` call ever happens
on a worker thread.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from typing import Any, Literal

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty

from .. import __version__
from ..app import netpolicy, ui_state
from ..errors import ConfigError, OnlineAccessRefused, ShamanError
from . import job as jobs
from . import preferences, properties, tempcopies
from .userdirs import user_dir

log = logging.getLogger(__name__)

TIMER_STEP_S = 0.1
"""How often the modal operator looks at the progress queue."""

HEADLESS_POLL_S = 0.25
"""How often ``execute()`` prints a progress line while it waits."""

CHECK_TIMEOUT_S = 5.0
"""The Check server button waits at most this long for an answer."""


OpResult = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


# -- preparing a submission (main thread) -------------------------------------------------


def ledger() -> tempcopies.Ledger:
    return tempcopies.Ledger(user_dir(preferences.package()) / "temporary-copies.txt")


def resolve_server_url(override: str, settings: preferences.Settings) -> str:
    """The URL to use, normalised and allowed by Blender's online-access setting."""
    from ..shaman.client import normalise_base_url

    raw = override.strip() or settings.server_url
    if not raw:
        raise ConfigError(
            "No Shaman server is set: fill in Server URL in Edit > Preferences > Add-ons > "
            f"Shaman Submitter (or set {preferences.ENV_SERVER_URL} before starting Blender)."
        )
    url = normalise_base_url(raw)
    decision = netpolicy.decide(url, online_access=bool(bpy.app.online_access))
    if not decision.allowed:
        raise OnlineAccessRefused(decision.message)
    return url


def client_settings(settings: preferences.Settings, *, read_timeout: float | None = None) -> Any:
    from ..shaman.client import ClientSettings

    timeout = read_timeout if read_timeout is not None else settings.request_timeout
    return ClientSettings(
        connect_timeout=min(5.0, timeout), read_timeout=timeout, pool_size=max(8, settings.jobs)
    )


def prepare_job(
    context: Any,
    *,
    server_url: str = "",
    checkout_path: str = "",
    dry_run: bool = False,
    unsaved: str = "AUTO",
    background: bool | None = None,
) -> tuple[jobs.SubmitJob, list[str]]:
    """Everything before the worker starts: checks, the temporary copy, the options.

    Raises ShamanError subclasses with the sentence for the artist. Claims the session's
    one submission slot, so a second click is refused before anything is saved.
    ``unsaved`` and ``background`` decide about a temporary copy (see
    ``ui_state.wants_temp_copy``); ``background`` defaults to ``bpy.app.background``.
    """
    from ..submit import SubmitOptions

    settings = preferences.read(context)
    url = resolve_server_url(server_url, settings)
    if not bpy.data.filepath:
        raise ConfigError(
            "This file has never been saved. Save it first (File > Save As): Shaman needs "
            "its folder to find the textures and libraries it uses."
        )
    original = Path(bpy.data.filepath)
    warnings = ui_state.render_output_warnings(context.scene.render.filepath)

    options_kwargs: dict[str, Any] = {
        "server_url": url,
        "checkout_template": checkout_path.strip() or settings.checkout_template,
        "project_root": settings.project_root,
        "jobs": settings.jobs,
        "dry_run": dry_run,
        "fail_on_missing": settings.fail_on_missing,
        "cache_dir": user_dir(preferences.package(), "cache"),
        "client_settings": client_settings(settings),
        "app_info": {
            "interface": "Blender",
            "blender": bpy.app.version_string,
            "addon": __version__,
            "original_blend": str(original),
        },
    }
    placeholder = jobs.SubmitJob(original, None, label=original.name)
    jobs.claim(placeholder)  # refuse a second submission before writing anything
    temp_copy: Path | None = None
    book: tempcopies.Ledger | None = None
    try:
        blend = original
        book = ledger()
        in_background = bpy.app.background if background is None else background
        if ui_state.wants_temp_copy(unsaved, is_dirty=bpy.data.is_dirty, background=in_background):
            tempcopies.sweep_dir(original.parent)
            temp_copy = tempcopies.temp_copy_path(original)
            book.add(temp_copy)
            log.info("unsaved changes: submitting a temporary copy %s", temp_copy)
            try:
                result = bpy.ops.wm.save_as_mainfile(
                    filepath=str(temp_copy), copy=True, check_existing=False
                )
            except RuntimeError as exc:
                tempcopies.remove_copy(temp_copy, book)
                raise ShamanError(
                    f"Could not write a temporary copy of the unsaved changes beside "
                    f"{original} ({exc}). Save the file, or check that its folder is writable."
                ) from exc
            if "FINISHED" not in (result or set()) or not temp_copy.exists():
                tempcopies.remove_copy(temp_copy, book)
                raise ShamanError(
                    f"Could not write a temporary copy of the unsaved changes beside {original}."
                )
            tempcopies.hide(temp_copy)
            blend = temp_copy
            options_kwargs["as_name"] = original.name
            if not in_background and bpy.data.is_dirty:
                bpy.app.timers.register(keep_unsaved_mark, first_interval=0.2)
        job = jobs.SubmitJob(
            blend,
            SubmitOptions(**options_kwargs),
            temp_copy=temp_copy,
            ledger=book,
            label=original.name,
        )
    except BaseException:
        if temp_copy is not None:
            tempcopies.remove_copy(temp_copy, book)
        jobs.release(placeholder)
        raise
    jobs.release(placeholder)
    jobs.claim(job)
    return job, warnings


def keep_unsaved_mark() -> None:
    """Keep the artist's file marked as having unsaved changes after our copy.

    Saving a copy must not look like saving the file: if Blender's "file saved" flag was
    set by the copy's save notifier (processed by the event loop after the operator
    returns), an undo step marks the file modified again, so quitting still asks.
    """
    if bpy.data.is_dirty:
        return None
    wm = bpy.context.window_manager
    windows = list(wm.windows) if wm is not None else []
    if not windows:
        return None
    try:
        with bpy.context.temp_override(window=windows[0]):
            bpy.ops.ed.undo_push(message="Submit to Shaman (unsaved changes kept)")
    except (RuntimeError, TypeError) as exc:
        log.warning("could not keep the file marked as unsaved: %s", exc)
    return None


# -- following a job (main thread) ---------------------------------------------------------


def tag_redraw(context: Any) -> None:
    """Redraw the Properties editors (where the panel lives) and preferences windows."""
    wm = getattr(context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in {"PROPERTIES", "PREFERENCES"}:
                area.tag_redraw()


def begin(state: Any, job: jobs.SubmitJob) -> None:
    properties.reset_progress(state)
    state.running = True
    state.cancel_requested = False
    state.phase = "starting"
    state.bar_text = "Starting..."


def poll(
    state: Any, job: jobs.SubmitJob, *, budget_s: float = ui_state.DEFAULT_TICK_BUDGET_S
) -> bool:
    """One modal tick: apply the newest progress; True once the worker has finished."""
    ui_state.tick(job.events, state, budget_s=budget_s)
    if not job.done.is_set():
        return False
    # The worker is done: whatever is still queued is old except the final event.
    while ui_state.tick(job.events, state, budget_s=budget_s).applied is not None:
        pass
    return True


def finish(state: Any, job: jobs.SubmitJob) -> ui_state.SubmissionOutcome:
    """Copy the outcome into the property group; returns it for the report."""
    outcome = job.outcome or ui_state.SubmissionOutcome(
        error="The submission ended without a result."
    )
    state.running = False
    state.cancel_requested = False
    if outcome.ok:
        properties.store_result(state, ui_state.result_fields(outcome.result))
    else:
        properties.store_error(state, outcome.error)
        if outcome.cancelled:
            state.phase = "cancelled"
    return outcome


def report_outcome(op: Any, outcome: ui_state.SubmissionOutcome, *, dry_run: bool) -> OpResult:
    if outcome.ok:
        lines = ui_state.result_lines(outcome.result)
        op.report({"INFO"}, lines[0] if dry_run else f"Submitted to Shaman. {lines[0]}")
        return {"FINISHED"}
    op.report({"WARNING"} if outcome.cancelled else {"ERROR"}, outcome.error)
    return {"CANCELLED"}


def _say(line: str) -> None:
    """A progress line on stdout: the headless path's whole user interface."""
    sys.stdout.write(f"shaman: {line}\n")
    sys.stdout.flush()


class SHAMAN_OT_submit(bpy.types.Operator):  # noqa: N801 (Blender naming)
    """Send this .blend and everything it uses to the Shaman server"""

    bl_idname = "shaman.submit"
    bl_label = "Submit to Shaman"
    bl_options = {"REGISTER"}  # noqa: RUF012

    server_url: StringProperty(  # type: ignore[valid-type]
        name="Server URL",
        description="Overrides the server URL of the preferences (for scripts)",
        default="",
        options={"SKIP_SAVE"},
    )
    checkout_path: StringProperty(  # type: ignore[valid-type]
        name="Checkout path",
        description="Overrides the checkout path template of the preferences (for scripts)",
        default="",
        options={"SKIP_SAVE"},
    )
    unsaved_changes: EnumProperty(  # type: ignore[valid-type]
        name="Unsaved changes",
        description="What to send when the file in memory differs from the saved file",
        items=[
            (
                "AUTO",
                "Automatic",
                "A temporary copy of the unsaved changes when the file has any; in "
                "background mode (where Blender cannot tell) the saved file",
            ),
            ("COPY", "What is in memory", "Always send a temporary copy of the file in memory"),
            ("DISK", "The saved file", "Always send the file as it is saved on disk"),
        ],
        default="AUTO",
        options={"SKIP_SAVE"},
    )
    dry_run: BoolProperty(  # type: ignore[valid-type]
        name="Dry run",
        description="Only check the dependencies and what the server already has",
        default=False,
        options={"SKIP_SAVE"},
    )

    @classmethod
    def description(cls, context: Any, properties: Any) -> str:
        if properties.dry_run:
            return (
                "List the files this .blend needs, their size, what the server already has "
                "and what is missing, without sending anything"
            )
        return "Send this .blend and everything it uses to the Shaman server"

    def _prepare(self, context: Any) -> tuple[jobs.SubmitJob, list[str]] | None:
        state = properties.state_of(context)
        try:
            job, warnings = prepare_job(
                context,
                server_url=self.server_url,
                checkout_path=self.checkout_path,
                dry_run=self.dry_run,
                unsaved=self.unsaved_changes,
                background=bpy.app.background or context.window is None,
            )
        except (ShamanError, OSError) as exc:  # OSError: the copy or the user folder
            message = (
                str(exc)
                if isinstance(exc, ShamanError)
                else (f"Could not prepare the submission: {exc}")
            )
            if state is not None and not isinstance(exc, jobs.Busy):
                properties.store_error(state, message)
            self.report({"ERROR"}, message)
            return None
        for warning in warnings:
            self.report({"WARNING"}, warning)
        return job, warnings

    # The scripted and headless path: synchronous, progress on stdout.
    def execute(self, context: Any) -> OpResult:
        prepared = self._prepare(context)
        if prepared is None:
            return {"CANCELLED"}
        job, warnings = prepared
        for warning in warnings:
            _say(f"warning: {warning}")
        state = properties.state_of(context)
        view = ui_state.ProgressView()
        if state is not None:
            begin(state, job)
        job.start()
        last = ""
        try:
            while True:
                finished = job.done.wait(HEADLESS_POLL_S)
                while ui_state.tick(job.events, view).applied is not None and finished:
                    pass
                if view.status_line and view.status_line != last:
                    last = view.status_line
                    _say(last)
                if finished:
                    break
        except KeyboardInterrupt:
            job.cancel()
            job.join()
        if state is not None:
            for name in properties.PROGRESS_NAMES:
                setattr(state, name, getattr(view, name))
            outcome = finish(state, job)
        else:
            outcome = job.outcome or ui_state.SubmissionOutcome(error="no result")
        if outcome.ok:
            for line in ui_state.result_lines(outcome.result):
                _say(line)
        return report_outcome(self, outcome, dry_run=self.dry_run)

    # The interactive path: a worker thread and a timer, Blender stays responsive.
    def invoke(self, context: Any, event: Any) -> OpResult:
        if bpy.app.background or context.window is None:
            return self.execute(context)
        prepared = self._prepare(context)
        if prepared is None:
            return {"CANCELLED"}
        job, _warnings = prepared
        state = properties.state_of(context)
        begin(state, job)
        job.start()
        wm = context.window_manager
        job.timer = wm.event_timer_add(TIMER_STEP_S, window=context.window)
        self._job = job
        wm.modal_handler_add(self)
        tag_redraw(context)
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> OpResult:
        job: jobs.SubmitJob | None = getattr(self, "_job", None)
        state = properties.state_of(context)
        if job is None or state is None:
            return {"CANCELLED"}
        if event.type == "ESC" and event.value == "PRESS" and not job.done.is_set():
            job.cancel()
            state.cancel_requested = True
            tag_redraw(context)
            return {"RUNNING_MODAL"}
        # bpy hands out a new wrapper per access: compare timers with ==, never "is"
        if event.type != "TIMER" or event.timer != job.timer:
            return {"PASS_THROUGH"}
        finished = poll(state, job)
        tag_redraw(context)
        if not finished:
            return {"PASS_THROUGH"}
        self._remove_timer(context, job)
        outcome = finish(state, job)
        return report_outcome(self, outcome, dry_run=self.dry_run)

    def cancel(self, context: Any) -> None:
        """Blender ends the modal operator (window closed, file loaded): stop the job."""
        job: jobs.SubmitJob | None = getattr(self, "_job", None)
        if job is not None:
            job.cancel()
            self._remove_timer(context, job)

    @staticmethod
    def _remove_timer(context: Any, job: jobs.SubmitJob) -> None:
        from .handlers import remove_timer

        remove_timer(job)


class SHAMAN_OT_cancel(bpy.types.Operator):  # noqa: N801 (Blender naming)
    """Stop the running submission; files already uploaded stay on the server"""

    bl_idname = "shaman.cancel"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}  # noqa: RUF012

    def execute(self, context: Any) -> OpResult:
        job = jobs.active()
        if job is None:
            self.report({"INFO"}, "No submission is running.")
            return {"CANCELLED"}
        job.cancel()
        state = properties.state_of(context)
        if state is not None:
            state.cancel_requested = True
        self.report({"INFO"}, f"Cancelling the submission of {job.label}...")
        return {"FINISHED"}


# -- the server check ----------------------------------------------------------------------


def check_server(url: str, settings: preferences.Settings, timeout: float) -> tuple[bool, str]:
    """Ask the server what it is; (ok, sentence). Plain Python: runs on a worker thread."""
    from ..shaman.client import ShamanClient

    try:
        answer = ShamanClient(url, client_settings(settings, read_timeout=timeout)).check()
    except ShamanError as exc:
        return False, str(exc)
    except Exception as exc:  # the button must answer, never raise into the UI
        log.exception("checking %s failed", url)
        return False, ui_state.error_text(exc)
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

    def _url(self, context: Any) -> tuple[str, preferences.Settings] | None:
        settings = preferences.read(context)
        try:
            return resolve_server_url(self.server_url, settings), settings
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
        url, settings = resolved
        ok, text = check_server(url, settings, CHECK_TIMEOUT_S)
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
        url, settings = resolved

        def work() -> None:
            global _check_answer
            _check_answer = check_server(url, settings, CHECK_TIMEOUT_S)

        state = properties.state_of(context)
        if state is not None:
            state.server_check_running = True
            state.server_check_text = ""
        _check_answer = None
        _check_thread = threading.Thread(target=work, name="shaman-check-server", daemon=True)
        _check_thread.start()
        bpy.app.timers.register(_check_timer, first_interval=0.1)
        return {"FINISHED"}


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


CLASSES = (SHAMAN_OT_submit, SHAMAN_OT_cancel, SHAMAN_OT_check_server, SHAMAN_OT_copy_text)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    global _check_thread
    for timer in (_check_timer, keep_unsaved_mark):
        if bpy.app.timers.is_registered(timer):
            bpy.app.timers.unregister(timer)
    if _check_thread is not None:
        _check_thread.join(CHECK_TIMEOUT_S + 1)
        _check_thread = None
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
