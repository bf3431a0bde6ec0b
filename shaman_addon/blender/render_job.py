"""The render job of a submission, built on Blender's main thread before the worker starts.

The application layer decides everything about the job (``app.jobs.prepare_job``); what
is Blender's own is the evaluation: every expression of the job type (hidden settings,
locked ones, the render output path) is evaluated here with ``bpy`` against the scene the
artist sees, before the worker thread exists. The expressions are code from the Manager
the artist configured, evaluated as such.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

from ..app import jobs as app_jobs
from ..jobs import expressions, values

if TYPE_CHECKING:
    from ..app.settings import Names, Settings
    from ..jobs.request import JobRequest
    from ..jobs.types import JobType


@dataclass(frozen=True)
class JobAsk:
    """What an interface asks for: the choice, and (from a script) settings as JSON."""

    choice: app_jobs.JobChoice
    settings_json: str = ""
    """The headless operator's ``job_settings``: a JSON object of setting values."""


def evaluator(context: Any, blend: Path) -> app_jobs.Evaluator:
    """Evaluates a job type's settings with ``bpy`` (main thread only)."""

    def evaluate(job_type: JobType, jobname: str, given: Any) -> dict[str, Any]:
        return expressions.evaluate_settings(
            job_type, context=context, bpy_module=bpy, jobname=jobname, blendfile=blend,
            given=given,
        )

    return evaluate


def build_request(
    context: Any, ask: JobAsk | None, *, url: str, settings: Settings, names: Names,
    blend: Path, cache_dir: Path,
) -> JobRequest | None:
    """The complete job (None: checkout only). Reads the Manager's job types (the cache,
    else the Manager), types the script's JSON values, evaluates the rest with ``bpy``;
    raises the application layer's errors (unknown type or tag, an invalid value)."""
    if ask is None or not ask.choice.job_type:
        return None
    info = app_jobs.manager_info(
        url, settings, names, cache_dir=cache_dir, online_access=bool(bpy.app.online_access)
    )
    choice = ask.choice
    job_type = info.job_type(choice.job_type)
    if job_type is not None and ask.settings_json.strip():
        given = {**values.from_json(job_type, ask.settings_json), **choice.given}
        choice = replace(choice, given=given)
    return app_jobs.prepare_job(info, choice, blend=blend, evaluate=evaluator(context, blend))
