"""What the Blender panel decides and shows besides progress and results, on plain Python.

The checkout name a template gives right now, warnings about the render output path,
and whether unsaved work is sent as a temporary copy: rules the operator and the panel
apply, kept free of ``bpy`` so tests call them directly. (Progress is in
``progress_view``, results and errors in ``present``.)
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath, PureWindowsPath

from ..errors import ShamanError

# --- unsaved changes -----------------------------------------------------------------

UNSAVED_MODES = ("AUTO", "COPY", "DISK")


def wants_temp_copy(mode: str, *, is_dirty: bool, background: bool) -> bool:
    """Submit a temporary copy of what is in memory (True) or the saved file (False)?

    ``AUTO`` follows ``bpy.data.is_dirty`` in interactive Blender. In background mode
    Blender cannot tell (its "file saved" flag is only set by the event loop, which does
    not run there, so ``is_dirty`` is always True); there ``AUTO`` sends what the script
    sees, a copy of the file in memory, as the README promises. Saving the same scene
    again in one Blender process gives the same bytes, so a resubmission from the same
    script uploads nothing; a new process's save differs in a few hundred bytes (memory
    addresses Blender writes), so there the main .blend alone is uploaded again.
    ``DISK`` sends the saved file as it is.
    """
    if mode == "COPY":
        return True
    if mode == "DISK":
        return False
    if mode != "AUTO":
        raise ValueError(f"unknown unsaved-changes mode {mode!r}; expected {UNSAVED_MODES}")
    return is_dirty or background


# --- checkout name ------------------------------------------------------------------


def checkout_preview(
    template: str, blend_path: str, *, now: datetime | None = None, user: str | None = None
) -> str:
    """The checkout name the template gives for this file right now, or why it cannot."""
    from ..submit.checkout_name import render_checkout_name

    if not blend_path:
        return "(save the file first)"
    blend_name = Path(blend_path).stem
    try:
        return render_checkout_name(template, blend_name=blend_name, now=now, user=user)
    except ShamanError as exc:
        return f"(invalid template: {exc})"


# --- render output ------------------------------------------------------------------

_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def default_local_roots(home: str | None = None) -> list[str]:
    """Folders that exist only on this computer: home, temp dirs, other users' homes."""
    roots = ["/tmp", "/var/tmp", "/home", "/Users", "/root"]
    home = home if home is not None else os.path.expanduser("~")
    if home and home != "~":
        roots.append(home)
    roots.append(tempfile.gettempdir())
    return roots


def _under(path: str, roots: Sequence[str], windows: bool) -> str | None:
    flavour = PureWindowsPath if windows else PurePosixPath
    p = flavour(path)
    for root in roots:
        if not root:
            continue
        r = flavour(root)
        if windows != bool(_DRIVE.match(root) or root.startswith("\\\\")):
            continue
        if p == r or r in p.parents:
            return root
    return None


def render_output_warnings(
    output_path: str, *, local_roots: Sequence[str] | None = None
) -> list[str]:
    """Warnings about ``scene.render.filepath`` before the farm renders it.

    ``//`` is relative to the .blend: on a worker that is the Shaman checkout, which the
    server cleans up, so the frames would be lost. A folder that only exists on this
    computer (home, temp, the system drive) will not exist on the workers.
    """
    setting = "Output Properties > Output"
    path = output_path.strip()
    if not path:
        return [
            f"The render output path ({setting}) is empty: the workers would write next to "
            "the .blend in the checkout, which the server cleans up."
        ]
    if path.startswith("//"):
        return [
            f"The render output path '{path}' ({setting}) is relative to the .blend file: "
            "on the farm it would write into the Shaman checkout, which the server cleans "
            "up. Use an absolute folder on shared storage."
        ]
    windows = bool(_DRIVE.match(path)) or path.startswith("\\\\")
    if not windows and not path.startswith("/"):
        return [
            f"The render output path '{path}' ({setting}) is relative: workers would resolve "
            "it against their own working folder. Use an absolute folder on shared storage."
        ]
    roots = list(local_roots) if local_roots is not None else default_local_roots()
    if windows:
        roots = [*roots, "C:\\"]
    root = _under(path, roots, windows)
    if root is not None:
        return [
            f"The render output path '{path}' ({setting}) is in {root}, a folder that exists "
            "only on this computer: the workers' frames would stay on each worker. Use a "
            "folder on shared storage."
        ]
    return []
