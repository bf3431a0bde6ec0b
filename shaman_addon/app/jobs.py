"""Render jobs for every interface: the Manager's job types and worker tags (cached per
server), and a person's choice turned into the ``JobRequest`` a submission carries.

The command line and Blender collect a ``JobChoice`` their own way and evaluate the job
type's settings their own way (an ``Evaluator``: Blender against the scene the artist
sees, the command line from the .blend); everything else is done here, once, so a wrong
job type, worker tag or priority is refused with the same sentence everywhere, before
any upload.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError, JobSettingInvalid, JobTypeUnknown, WorkerTagUnknown
from ..jobs.catalog import (
    ManagerInfo,
    fetch_manager_info,
    load_manager_info,
    save_manager_info,
)
from ..jobs.request import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY, JobRequest
from ..jobs.types import JobSetting, JobType
from ..submit.checkout_name import render_job_name
from .settings import Names, Settings, check, client_settings, resolve_server_url

Evaluator = Callable[[JobType, str, Mapping[str, Any]], dict[str, Any]]
"""(job type, the job's name, values the person gave) -> every setting's value but
blendfile."""

BLENDFILE = "blendfile"
"""The one setting the submission fills in (from the checkout)."""


@dataclass(frozen=True)
class JobChoice:
    """What an interface collects from the person."""

    job_type: str
    """A job type NAME; "" = checkout only (no job)."""
    name: str = ""
    """The job's name: a template with the checkout path's placeholders ("" = the
    blend's name without .blend)."""
    priority: int = DEFAULT_PRIORITY
    worker_tag: str = ""
    """A worker tag NAME, "" = any worker."""
    paused: bool = False
    given: Mapping[str, Any] = field(default_factory=dict)
    """Values the person set; they win over the job type's expressions."""


def manager_info(url: str, settings: Settings, names: Names, *, cache_dir: Path | None,
                 refresh: bool = False, online_access: bool | None = None) -> ManagerInfo:
    """The Manager's job types and worker tags: from the cache, or (``refresh``, or none
    cached yet) asked and cached. ManagerTooOld for a Manager without the job API."""
    normalised = resolve_server_url(url, names, online_access=online_access)
    if not refresh and cache_dir is not None:
        cached = load_manager_info(normalised, cache_dir)
        if cached is not None:
            return cached
    check(settings, names)
    from ..jobs.manager import ManagerClient

    with ManagerClient(normalised, client_settings(settings)) as client:
        info = fetch_manager_info(client)
    if cache_dir is not None:
        save_manager_info(info, cache_dir)
    return info


def cached_manager_info(url: str, cache_dir: Path) -> ManagerInfo | None:
    """The cached info of the Manager at ``url``, or None; never the network (for
    drawing a panel)."""
    from ..shaman.urls import normalise_base_url

    try:
        normalised = normalise_base_url(url)
    except ConfigError:
        return None
    return load_manager_info(normalised, cache_dir)


def host_platform(name: str | None = None) -> str:
    """Flamenco's name for a platform: 'linux', 'windows' or 'darwin'."""
    name = name or sys.platform
    if name.startswith("win"):
        return "windows"
    return "darwin" if name == "darwin" else "linux"


def _job_type(info: ManagerInfo, name: str) -> JobType:
    job_type = info.job_type(name)
    if job_type is None:
        known = ", ".join(repr(t.name) for t in info.job_types) or "none"
        raise JobTypeUnknown(
            f"The Manager at {info.url} has no job type {name!r} (its job types: {known}); "
            "choose one of those, or refresh the job types if it was just added.")
    return job_type


def _check_tag(info: ManagerInfo, name: str) -> None:
    if name and info.tag_id(name) is None:
        known = ", ".join(repr(t.name) for t in info.worker_tags) or "none"
        raise WorkerTagUnknown(
            f"The Manager at {info.url} has no worker tag {name!r} (its tags: {known}); "
            "choose one of those, or none for any worker.")


def _check_given(job_type: JobType, given: Mapping[str, Any]) -> None:
    for key in given:
        if key == BLENDFILE:
            raise JobSettingInvalid(
                f"Job setting {BLENDFILE!r} of job type {job_type.name!r} cannot be set: the "
                "submission sets it to the .blend file in the checkout.", key=key)
        if job_type.setting(key) is None:
            known = ", ".join(s.key for s in job_type.settings if s.key != BLENDFILE)
            raise JobSettingInvalid(
                f"Job type {job_type.name!r} has no setting {key!r}; its settings are: "
                f"{known}.", key=key)


def default_metadata(blend: Path) -> dict[str, str]:
    """The job's metadata: who submits, the blend file, the project, this extension."""
    from ..collect.collector import find_project_root

    try:
        user = getpass.getuser()
    except Exception:  # no login name on this machine (containers, odd Windows setups)
        user = "unknown"
    return {"user.name": user, "blendfile": Path(blend).name,
            "project": find_project_root(Path(blend)).name,
            "submitter": f"Shaman Submitter {__version__}"}


def prepare_job(info: ManagerInfo, choice: JobChoice, *, blend: Path, evaluate: Evaluator,
                platform: str | None = None,
                metadata: Mapping[str, str] | None = None) -> JobRequest | None:
    """The job to submit with ``blend`` (None: ``choice.job_type`` is "", checkout only).
    Refused before any upload: JobTypeUnknown, WorkerTagUnknown (the names listed),
    JobSettingInvalid (a priority out of range, a setting the job type lacks)."""
    if not choice.job_type:
        return None
    job_type = _job_type(info, choice.job_type)
    _check_tag(info, choice.worker_tag)
    if not MIN_PRIORITY <= choice.priority <= MAX_PRIORITY:
        raise JobSettingInvalid(
            f"The job's priority must be from {MIN_PRIORITY} to {MAX_PRIORITY} (got "
            f"{choice.priority}).", key="priority")
    _check_given(job_type, choice.given)
    try:
        name = render_job_name(choice.name, blend_name=Path(blend).name)
    except ConfigError as exc:
        raise exc.reworded(str(exc).replace("checkout path template", "job name")) from exc
    values = evaluate(job_type, name, dict(choice.given))
    settings = {k: v for k, v in values.items() if k != BLENDFILE}
    return JobRequest(
        job_type=job_type, name=name, settings=settings, priority=choice.priority,
        worker_tag=choice.worker_tag, paused=choice.paused,
        submitter_platform=host_platform(platform),
        metadata={**default_metadata(blend), **(metadata or {})})


def how_submit_fills(setting: JobSetting) -> tuple[str, list[str]]:
    """How the command line's ``submit`` fills ``setting`` in without Blender:
    ('computed', []), ('default', []), ('needs_set', [what only Blender reads]),
    ('optional', []) or ('submission', [])."""
    from ..jobs.scene_blend import blender_only_reads
    from ..jobs.values import NOT_GIVEN_KEYS

    if setting.key in NOT_GIVEN_KEYS:
        return "submission", []
    if setting.eval:
        unknown = blender_only_reads(setting.eval)
        return ("needs_set", unknown) if unknown else ("computed", [])
    if setting.default is not None:
        return "default", []
    return ("needs_set", []) if setting.required else ("optional", [])
