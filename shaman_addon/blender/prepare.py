"""Everything before a submission's worker starts (main thread): settings to options,
the one-at-a-time claim, and the temporary copy of unsaved work.

The options come from the application layer (``app.settings``) exactly as on the
command line; what is Blender's own is where the settings come from (the preferences,
the operator's overrides, Blender's online-access setting), the saved file, and the
copy of what is in memory.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

from .. import __version__
from ..app import settings as app_settings
from ..app import ui_state
from ..errors import ConfigError, ShamanError
from ..submit import SubmitOptions
from . import job as jobs
from . import preferences, render_job, tempcopies
from .userdirs import user_dir

if TYPE_CHECKING:
    from ..jobs.request import JobRequest

log = logging.getLogger(__name__)

OVERRIDE_NAMES = dataclasses.replace(
    app_settings.BLENDER_NAMES,
    server_url="the server_url of shaman.submit",
    checkout_template="the checkout_path of shaman.submit",
)
"""The names of the settings an operator's arguments override (for scripts)."""


def ledger() -> tempcopies.Ledger:
    return tempcopies.Ledger(user_dir(preferences.package()) / "temporary-copies.txt")


def resolve_server_url(override: str, settings: app_settings.Settings) -> str:
    """The URL to use (the override, else the preferences), normalised and allowed by
    Blender's online-access setting."""
    names = OVERRIDE_NAMES if override.strip() else app_settings.BLENDER_NAMES
    return app_settings.resolve_server_url(
        override.strip() or settings.server_url, names,
        online_access=bool(bpy.app.online_access),
    )


def saved_blend() -> Path:
    """The artist's .blend on disk; ConfigError when it was never saved."""
    if not bpy.data.filepath:
        raise ConfigError(
            "This file has never been saved. Save it first (File > Save As): Shaman needs "
            "its folder to find the textures and libraries it uses."
        )
    return Path(bpy.data.filepath)


def cache_dir() -> Path:
    """The extension's cache folder (checksums, the Manager's job types)."""
    return user_dir(preferences.package(), "cache")


def submit_options(
    settings: app_settings.Settings, original: Path, *, checkout_path: str, dry_run: bool,
    job: JobRequest | None = None,
) -> SubmitOptions:
    """The application layer's options from the preferences (with the server URL already
    resolved), the operator's checkout path override, and the render job (if any)."""
    names = app_settings.BLENDER_NAMES
    if checkout_path.strip():
        settings = dataclasses.replace(settings, checkout_template=checkout_path.strip())
        names = OVERRIDE_NAMES
    run = app_settings.Run(
        cache_dir=cache_dir(),
        dry_run=dry_run,
        job=job,
        app_info={
            "interface": "Blender",
            "blender": bpy.app.version_string,
            "addon": __version__,
            "original_blend": str(original),
        },
    )
    return app_settings.submit_options(settings, run, names)


def save_temp_copy(original: Path, book: tempcopies.Ledger) -> Path:
    """A hidden copy of what is in memory, beside ``original`` (so relative paths hold),
    listed in ``book`` until it is removed."""
    tempcopies.sweep_dir(original.parent)
    copy = tempcopies.temp_copy_path(original)
    book.add(copy)
    log.info("unsaved changes: submitting a temporary copy %s", copy)
    try:
        result = bpy.ops.wm.save_as_mainfile(filepath=str(copy), copy=True, check_existing=False)
    except RuntimeError as exc:
        tempcopies.remove_copy(copy, book)
        raise ShamanError(
            f"Could not write a temporary copy of the unsaved changes beside {original} "
            f"({exc}). Save the file, or check that its folder is writable."
        ) from exc
    if "FINISHED" not in (result or set()) or not copy.exists():
        tempcopies.remove_copy(copy, book)
        raise ShamanError(
            f"Could not write a temporary copy of the unsaved changes beside {original}."
        )
    tempcopies.hide(copy)
    return copy


def prepare_job(
    context: Any,
    *,
    server_url: str = "",
    checkout_path: str = "",
    dry_run: bool = False,
    unsaved: str = "AUTO",
    background: bool | None = None,
    render: render_job.JobAsk | None = None,
) -> tuple[jobs.SubmitJob, list[str]]:
    """A job ready to start, claimed as the session's one submission, and warnings.

    Raises ShamanError subclasses with the sentence for the artist; a second submission
    is refused (Busy) before anything is saved. ``unsaved`` and ``background`` decide
    about a temporary copy (see ``ui_state.wants_temp_copy``); ``background`` defaults to
    ``bpy.app.background``. ``render`` asks for a render job: its settings are evaluated
    here, on the main thread, before the worker exists.
    """
    settings = preferences.read(context)
    url = resolve_server_url(server_url, settings)  # a URL problem is the first thing to say
    original = saved_blend()
    names = OVERRIDE_NAMES if server_url.strip() else app_settings.BLENDER_NAMES
    settings = dataclasses.replace(settings, server_url=url)
    request = render_job.build_request(
        context, render, url=url, settings=settings, names=names, blend=original,
        cache_dir=cache_dir(),
    )
    options = submit_options(
        settings, original, checkout_path=checkout_path, dry_run=dry_run, job=request,
    )
    warnings = ui_state.render_output_warnings(context.scene.render.filepath)
    job = jobs.SubmitJob(original, options, label=original.name)
    jobs.claim(job)
    try:
        in_background = bpy.app.background if background is None else background
        if ui_state.wants_temp_copy(unsaved, is_dirty=bpy.data.is_dirty, background=in_background):
            book = ledger()
            job.send_copy(save_temp_copy(original, book), book)
            if not in_background and bpy.data.is_dirty:
                bpy.app.timers.register(keep_unsaved_mark, first_interval=0.2)
    except BaseException:
        job.cleanup()
        raise
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
