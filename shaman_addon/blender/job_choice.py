"""The Render job section's choice, the Manager info it is drawn from, and remembering it.

``WindowManager.shaman_job`` holds the choice (job type, name, priority, worker tag,
paused); each job type's settings live in the property groups ``job_props`` generates.
The Manager's job types come from the cache only (``app.jobs.cached_manager_info``):
loading them here never touches the network; the Refresh operator fetches them. The
last choice per file is remembered by ``job_memory``, outside the artist's file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from ..app import jobs as app_jobs
from ..errors import ShamanError
from ..jobs.request import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY
from ..jobs.types import JobType, Subtype
from . import preferences
from .job_memory import ChoiceMemory
from .job_props import (
    Generated,
    drop_all,
    generated,
    group_of,
    is_automatic,
    keep_items,
    lock_name,
    sync_groups,
)
from .render_job import JobAsk
from .userdirs import user_dir

log = logging.getLogger(__name__)

NONE = "__none__"
"""The job type item of a checkout only."""
ANY_TAG = "__any__"
"""The worker tag item of any worker."""

_info: app_jobs.ManagerInfo | None = None
_restoring = False


def changed(context: Any) -> None:
    """A property of the section changed: remember the choice (not while restoring it)."""
    if not _restoring:
        remember(context)


# -- the choice ---------------------------------------------------------------------------


def _on_change(_self: Any, context: Any) -> None:
    changed(context)


def _job_type_items(_self: Any, _context: Any) -> list[tuple[str, str, str]]:
    items = [(NONE, "None (checkout only)", "Create the checkout, submit no render job")]
    for jt in _info.job_types if _info is not None else ():
        items.append((jt.name, jt.label or jt.name, jt.description or jt.name))
    keep_items("job_types", items)
    return items


def _tag_items(_self: Any, _context: Any) -> list[tuple[str, str, str]]:
    items = [(ANY_TAG, "Any worker", "Every worker may render the job")]
    for tag in _info.worker_tags if _info is not None else ():
        items.append((tag.name, tag.name, tag.description or tag.name))
    keep_items("tags", items)
    return items


class SHAMAN_PG_job(bpy.types.PropertyGroup):  # noqa: N801 (Blender naming)
    """The Render job section: which job to submit with the checkout."""

    job_type: EnumProperty(  # type: ignore[valid-type]
        name="Render job",
        description="The Manager's job type that renders the checkout, or none",
        items=_job_type_items, update=_on_change,
    )
    job_name: StringProperty(  # type: ignore[valid-type]
        name="Job name", default="", update=_on_change,
        description="The job's name (placeholders as the checkout path); empty: the "
        ".blend's name",
    )
    priority: IntProperty(  # type: ignore[valid-type]
        name="Priority", default=DEFAULT_PRIORITY, min=MIN_PRIORITY, max=MAX_PRIORITY,
        update=_on_change, description="The job's priority on the farm",
    )
    worker_tag: EnumProperty(  # type: ignore[valid-type]
        name="Worker tag", items=_tag_items, update=_on_change,
        description="Only workers with this tag render the job",
    )
    paused: BoolProperty(  # type: ignore[valid-type]
        name="Paused", default=False, update=_on_change,
        description="Submit the job paused: it starts when resumed on the Manager",
    )


def choice_of(context: Any) -> Any:
    return getattr(context.window_manager, "shaman_job", None)


def current_info() -> app_jobs.ManagerInfo | None:
    """The Manager info loaded from the cache (no network; what the panel draws)."""
    return _info


def load_info(context: Any) -> None:
    """Read the cached Manager info of the preferences' server and generate the job
    types' properties (main thread; no network)."""
    global _info
    from ..shaman.client import normalise_base_url

    url = preferences.read(context).server_url
    try:
        url = normalise_base_url(url) if url else ""
    except ShamanError:
        url = ""
    info = app_jobs.cached_manager_info(url, cache_dir()) if url else None
    _info = info
    sync_groups(info)


def cache_dir() -> Path:
    return user_dir(preferences.package(), "cache")


def memory() -> ChoiceMemory:
    return ChoiceMemory(user_dir(preferences.package()) / "render-job-choices.json")


def given_values(job_type: JobType, gen: Generated, group: Any) -> dict[str, Any]:
    """The values the artist set: shown, editable, not automatic; empty text is unset."""
    given: dict[str, Any] = {}
    for setting in job_type.settings:
        name = gen.names.get(setting.key)
        if name is None or not setting.editable or is_automatic(setting, group, name):
            continue
        value = getattr(group, name)
        if isinstance(value, str):
            if not value:
                continue
            if setting.subtype in (Subtype.FILE_PATH, Subtype.DIR_PATH):
                value = bpy.path.abspath(value)  # '//' means nothing on a worker
        given[setting.key] = value
    return given


def panel_choice(context: Any) -> app_jobs.JobChoice:
    """The panel's choice as the application layer takes it ("" job type: none)."""
    props = choice_of(context)
    if props is None or props.job_type == NONE:
        return app_jobs.JobChoice(job_type="")
    found = group_of(context, props.job_type)
    given = given_values(found[0].job_type, *found) if found and found[1] is not None else {}
    return app_jobs.JobChoice(
        job_type=props.job_type, name=props.job_name.strip(), priority=int(props.priority),
        worker_tag="" if props.worker_tag == ANY_TAG else props.worker_tag,
        paused=bool(props.paused), given=given,
    )


def panel_ask(context: Any) -> JobAsk | None:
    """What the Submit button asks for (remembered for this file); None: checkout only."""
    remember(context)
    choice = panel_choice(context)
    return JobAsk(choice) if choice.job_type else None


# -- remembering the last choice per file -------------------------------------------------

_CHOICE_KEYS = ("job_type", "job_name", "priority", "worker_tag", "paused")


def record_of(context: Any) -> dict[str, Any]:
    """The session's choice and every job type's values, as JSON-able values."""
    props = choice_of(context)
    record: dict[str, Any] = {k: getattr(props, k) for k in _CHOICE_KEYS} if props else {}
    types: dict[str, Any] = {}
    for name, gen in generated().items():
        group = getattr(context.window_manager, gen.attr, None)
        if group is None:
            continue
        types[name] = {
            "values": {key: getattr(group, p) for key, p in gen.names.items()},
            "locks": {key: getattr(group, lock_name(p)) for key, p in gen.names.items()
                      if hasattr(group, lock_name(p))},
        }
    record["job_types"] = types
    return record


def remember(context: Any) -> None:
    memory().put(bpy.data.filepath, record_of(context))


def _assign(target: Any, name: str, value: Any) -> None:
    try:
        setattr(target, name, value)
    except (TypeError, ValueError, AttributeError) as exc:  # a type that changed since
        log.info("not restoring %s=%r: %s", name, value, exc)


def restore(context: Any) -> None:
    """Set the session's properties to the choice remembered for the open file (the
    defaults when there is none)."""
    global _restoring
    record = memory().get(bpy.data.filepath)
    props = choice_of(context)
    if props is None:
        return
    _restoring = True
    try:
        for key in _CHOICE_KEYS:
            props.property_unset(key)
            if key in record:
                _assign(props, key, record[key])
        remembered = record.get("job_types", {})
        for name, gen in generated().items():
            group = getattr(context.window_manager, gen.attr, None)
            if group is None:
                continue
            saved = remembered.get(name, {}) if isinstance(remembered, dict) else {}
            for key, p in gen.names.items():
                for prop, kind in ((p, "values"), (lock_name(p), "locks")):
                    if not hasattr(group, prop):
                        continue
                    group.property_unset(prop)
                    if key in saved.get(kind, {}):
                        _assign(group, prop, saved[kind][key])
    finally:
        _restoring = False


def reload(context: Any) -> None:
    """Load the cached job types and the open file's remembered choice (main thread)."""
    try:
        load_info(context)
    except (ShamanError, OSError) as exc:
        log.warning("could not load the Manager's job types from the cache: %s", exc)
    restore(context)


CLASSES = (SHAMAN_PG_job,)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    wm_type: Any = bpy.types.WindowManager
    wm_type.shaman_job = bpy.props.PointerProperty(  # type: ignore[func-returns-value]
        type=SHAMAN_PG_job)


def unregister() -> None:
    global _info
    drop_all()
    _info = None
    wm_type: Any = bpy.types.WindowManager
    if hasattr(wm_type, "shaman_job"):
        del wm_type.shaman_job
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
