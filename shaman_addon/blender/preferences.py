"""Add-on preferences: where the Shaman is and how to talk to it.

``bl_idname`` must equal the extension's ``__package__``, which is only known when
Blender calls ``register``; ``register(package)`` sets it before registering the class.
The server URL defaults to ``$SHAMAN_SERVER_URL`` so a studio can deploy it once.
``read`` hands the values on as the application layer's plain ``Settings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..app.settings import (
    DEFAULT_JOBS,
    DEFAULT_REQUEST_TIMEOUT_S,
    Settings,
    environment_server_url,
)
from ..submit.checkout_name import DEFAULT_TEMPLATE, PLACEHOLDERS


class SHAMAN_AP_preferences(bpy.types.AddonPreferences):  # noqa: N801 (Blender naming)
    """Settings shared by every file; the panel and the operators read them."""

    bl_idname = "shaman_submitter"  # replaced by register(package): the extension package

    server_url: StringProperty(  # type: ignore[valid-type]
        name="Server URL",
        description="Base URL of the Flamenco Manager whose Shaman receives the files, "
        "e.g. http://flamenco:8080",
        default=environment_server_url(),
        update=lambda _self, context: _server_changed(context),
    )
    checkout_template: StringProperty(  # type: ignore[valid-type]
        name="Checkout path",
        description="Name of the checkout on the server. Placeholders: "
        + ", ".join("{" + k + "}" for k in PLACEHOLDERS),
        default=DEFAULT_TEMPLATE,
    )
    jobs: IntProperty(  # type: ignore[valid-type]
        name="Parallel uploads",
        description="How many files are hashed and uploaded at the same time",
        default=DEFAULT_JOBS,
        min=1,
        max=32,
    )
    project_root_mode: EnumProperty(  # type: ignore[valid-type]
        name="Project root",
        description="The folder that becomes the root of the checkout",
        items=[
            (
                "AUTO",
                "Automatic",
                "The nearest folder above the .blend holding .blender_project, .git or .svn; "
                "else the .blend's own folder",
            ),
            ("FOLDER", "Folder", "A fixed project folder"),
        ],
        default="AUTO",
    )
    project_root: StringProperty(  # type: ignore[valid-type]
        name="Project folder",
        description="Files outside this folder are placed under a separate part of the checkout",
        subtype="DIR_PATH",
        default="",
    )
    fail_on_missing: BoolProperty(  # type: ignore[valid-type]
        name="Stop on missing files",
        description="Refuse to submit when a dependency is missing, instead of warning",
        default=False,
    )
    allow_credential_files: BoolProperty(  # type: ignore[valid-type]
        name="Send credential files",
        description="Send dependencies that lie in credential stores (~/.ssh, ~/.gnupg, "
        "~/.aws, ~/.netrc, keyrings...) instead of refusing the submission",
        default=False,
    )
    request_timeout: FloatProperty(  # type: ignore[valid-type]
        name="Request timeout",
        description="Seconds to wait for the server's answer to one request",
        default=DEFAULT_REQUEST_TIMEOUT_S,
        min=1.0,
        max=3600.0,
        subtype="TIME_ABSOLUTE",
        unit="TIME_ABSOLUTE",
    )

    def draw(self, context: Any) -> None:
        layout: Any = self.layout
        layout.use_property_split = True
        layout.prop(self, "server_url")
        row = layout.row()
        row.operator("shaman.check_server", icon="URL")
        state = getattr(context.window_manager, "shaman", None)
        if state is not None and (state.server_check_text or state.server_check_running):
            text = "Checking..." if state.server_check_running else state.server_check_text
            icon = "CHECKMARK" if state.server_check_ok else "ERROR"
            if state.server_check_running:
                icon = "SORTTIME"
            layout.label(text=text, icon=icon)
        layout.prop(self, "checkout_template")
        layout.prop(self, "jobs")
        layout.prop(self, "project_root_mode")
        if self.project_root_mode == "FOLDER":
            layout.prop(self, "project_root")
        layout.prop(self, "fail_on_missing")
        layout.prop(self, "allow_credential_files")
        layout.prop(self, "request_timeout")


def _server_changed(context: Any) -> None:
    """Another server: its cached job types (if any) fill the Render job menu."""
    from . import job_choice

    job_choice.reload(context)


_package = ""


def set_package(package: str) -> None:
    global _package
    _package = package
    SHAMAN_AP_preferences.bl_idname = package


def package() -> str:
    return _package


def get(context: Any = None) -> Any:
    """The preferences object, or None while the add-on is not enabled."""
    ctx = context or bpy.context
    user_prefs = ctx.preferences
    if user_prefs is None:
        return None
    addon = user_prefs.addons.get(_package)
    return addon.preferences if addon is not None else None


def read(context: Any = None) -> Settings:
    """The preferences as plain values (the environment's server while not enabled)."""
    prefs = get(context)
    if prefs is None:
        return Settings(server_url=environment_server_url())
    root: Path | None = None
    if prefs.project_root_mode == "FOLDER" and prefs.project_root.strip():
        root = Path(bpy.path.abspath(prefs.project_root.strip()))
    return Settings(
        server_url=prefs.server_url.strip(),
        checkout_template=prefs.checkout_template.strip() or DEFAULT_TEMPLATE,
        jobs=int(prefs.jobs),
        project_root=root,
        fail_on_missing=bool(prefs.fail_on_missing),
        allow_credential_files=bool(prefs.allow_credential_files),
        request_timeout=float(prefs.request_timeout),
    )


CLASSES = (SHAMAN_AP_preferences,)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
