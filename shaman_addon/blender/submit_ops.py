"""The submit and cancel operators, and following a job on the main thread.

Thin on purpose: ``prepare`` builds the job from the preferences, the application
layer's runner does the work on a worker thread, and these copy plain values (the
progress view, the result view, the sentences of ``app.present``) into the property
group and the reports. No ``bpy`` call ever happens on a worker thread.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from ..app import present
from ..app.jobs import JobChoice
from ..app.progress_view import DEFAULT_TICK_BUDGET_S, ProgressView, tick
from ..app.runner import Outcome, follow
from ..errors import Busy, ShamanError
from ..jobs.request import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY
from . import job as jobs
from . import prepare, properties
from .render_job import JobAsk

TIMER_STEP_S = 0.1
"""How often the modal operator looks at the progress queue."""

HEADLESS_POLL_S = 0.25
"""How often ``execute()`` prints a progress line while it waits."""

OpResult = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]


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


def poll(state: Any, job: jobs.SubmitJob, *, budget_s: float = DEFAULT_TICK_BUDGET_S) -> bool:
    """One modal tick: apply the newest progress within ``budget_s``; True once the
    worker has finished and its last event is applied.

    A finished worker may leave a long queue behind (100,000 files, a busy main
    thread): it is worked off over as many ticks as it takes, each within the budget,
    never in one long tick.
    """
    finished = job.done.is_set()  # before the tick: no event comes after this
    tick(job.events, state, budget_s=budget_s)
    return finished and job.events.empty()


def finish(state: Any, job: jobs.SubmitJob) -> Outcome:
    """Copy the finished job's outcome into the property group; returns it."""
    outcome = job.outcome
    state.running = False
    state.cancel_requested = False
    full = present.FullLists.of(job.options, json_flag=False)
    if outcome.result is not None and outcome.error is None:
        properties.store_result(state, present.ResultView.of(outcome.result, full))
        properties.store_job(state, getattr(outcome.result, "job", None))
    else:
        error = outcome.error
        properties.store_error(
            state, present.failure_text(error, full) if error else outcome.message)
        properties.store_kept_checkout(state, outcome.error)
        if outcome.cancelled:
            state.phase = "cancelled"
    return outcome


def report_outcome(op: Any, outcome: Outcome) -> OpResult:
    if outcome.result is not None and outcome.error is None:
        op.report({"INFO"}, present.report_line(outcome.result))
        return {"FINISHED"}
    op.report({"WARNING"} if outcome.cancelled else {"ERROR"}, outcome.message)
    return {"CANCELLED"}


def say(line: str) -> None:
    """A line on stdout: the headless path's whole user interface."""
    sys.stdout.write(f"shaman: {line}\n")
    sys.stdout.flush()


def run_headless(job: jobs.SubmitJob, state: Any) -> Outcome:
    """Run ``job`` to its end on this thread's watch, saying each new status line."""
    view = ProgressView()
    said = [""]

    def on_tick(finished: bool) -> None:
        while tick(job.events, view) is not None and finished:
            pass
        if view.status_line and view.status_line != said[0]:
            said[0] = view.status_line
            say(view.status_line)

    if state is not None:
        begin(state, job)
    outcome = follow(job, on_tick, poll_s=HEADLESS_POLL_S)
    if state is not None:
        view.apply_to(state)
        finish(state, job)
    if outcome.result is not None:
        full = present.FullLists.of(job.options, json_flag=False)
        for line in present.result_lines(outcome.result, full):
            say(line)
        for line in present.missing_lines(outcome.result.missing, full):
            say(line)
    return outcome


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
                "background mode (where Blender cannot tell) always a copy of what is in "
                "memory",
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
    # The render job (for scripts; the panel's Render job section when not given).
    job_type: StringProperty(  # type: ignore[valid-type]
        name="Job type",
        description="The Manager's job type to render the checkout with (for scripts); "
        "'' submits the checkout only. Not given: the panel's Render job choice",
        default="",
        options={"SKIP_SAVE"},
    )
    job_name: StringProperty(  # type: ignore[valid-type]
        name="Job name",
        description="The render job's name (placeholders as the checkout path); "
        "'' = the .blend's name",
        default="",
        options={"SKIP_SAVE"},
    )
    job_settings: StringProperty(  # type: ignore[valid-type]
        name="Job settings",
        description='Setting values as a JSON object, e.g. {"frames": "1-10"}; every '
        "other setting gets its automatic value or its default",
        default="",
        options={"SKIP_SAVE"},
    )
    priority: IntProperty(  # type: ignore[valid-type]
        name="Priority",
        description="The render job's priority on the farm",
        default=DEFAULT_PRIORITY,
        min=MIN_PRIORITY,
        max=MAX_PRIORITY,
        options={"SKIP_SAVE"},
    )
    worker_tag: StringProperty(  # type: ignore[valid-type]
        name="Worker tag",
        description="Only workers with this tag (its name) render the job; '' = any worker",
        default="",
        options={"SKIP_SAVE"},
    )
    use_panel_choice: BoolProperty(  # type: ignore[valid-type]
        name="Use the panel's render job",
        description="Submit the render job chosen in the panel (its buttons set this)",
        default=False,
        options={"HIDDEN", "SKIP_SAVE"},
    )
    paused: BoolProperty(  # type: ignore[valid-type]
        name="Paused",
        description="Submit the render job paused: it starts when it is resumed on the "
        "Manager",
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

    def _job_ask(self, context: Any, *, from_panel: bool) -> JobAsk | None:
        """The render job asked for: the operator's arguments when a script gives a job
        type; the panel's choice from its buttons, or when invoked from the interface
        without a job type."""
        panel = from_panel or self.use_panel_choice
        if panel and not self.properties.is_property_set("job_type"):
            from . import job_choice

            return job_choice.panel_ask(context)
        if not self.job_type.strip():
            return None
        choice = JobChoice(
            job_type=self.job_type.strip(), name=self.job_name, priority=int(self.priority),
            worker_tag=self.worker_tag.strip(), paused=bool(self.paused),
        )
        return JobAsk(choice, self.job_settings)

    def _prepare(
        self, context: Any, *, from_panel: bool = False
    ) -> tuple[jobs.SubmitJob, list[str]] | None:
        """The job and its warnings (reported), or None after reporting why there is
        no job."""
        state = properties.state_of(context)
        try:
            job, warnings = prepare.prepare_job(
                context,
                server_url=self.server_url,
                checkout_path=self.checkout_path,
                dry_run=self.dry_run,
                unsaved=self.unsaved_changes,
                background=bpy.app.background or context.window is None,
                render=self._job_ask(context, from_panel=from_panel),
            )
        except (ShamanError, OSError) as exc:  # OSError: the copy or the user folder
            message = (
                str(exc) if isinstance(exc, ShamanError)
                else f"Could not prepare the submission: {exc}"
            )
            if state is not None and not isinstance(exc, Busy):
                properties.store_error(state, message)
            self.report({"ERROR"}, message)
            return None
        for warning in warnings:
            self.report({"WARNING"}, warning)
        return job, warnings

    # The scripted and headless path: synchronous, progress on stdout.
    def execute(self, context: Any, *, from_panel: bool = False) -> OpResult:
        prepared = self._prepare(context, from_panel=from_panel)
        if prepared is None:
            return {"CANCELLED"}
        job, warnings = prepared
        for warning in warnings:
            say(f"warning: {warning}")
        outcome = run_headless(job, properties.state_of(context))
        return report_outcome(self, outcome)

    # The interactive path: a worker thread and a timer, Blender stays responsive.
    def invoke(self, context: Any, event: Any) -> OpResult:
        if bpy.app.background or context.window is None:
            return self.execute(context, from_panel=True)
        prepared = self._prepare(context, from_panel=True)
        if prepared is None:
            return {"CANCELLED"}
        job = prepared[0]
        begin(properties.state_of(context), job)
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
        self._remove_timer(job)
        return report_outcome(self, finish(state, job))

    def cancel(self, context: Any) -> None:
        """Blender ends the modal operator (window closed, file loaded): stop the job."""
        job: jobs.SubmitJob | None = getattr(self, "_job", None)
        if job is not None:
            job.cancel()
            self._remove_timer(job)

    @staticmethod
    def _remove_timer(job: jobs.SubmitJob) -> None:
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


CLASSES = (SHAMAN_OT_submit, SHAMAN_OT_cancel)
