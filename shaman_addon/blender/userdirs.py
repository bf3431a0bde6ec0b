"""The extension's own writable folder (checksum cache, temporary-copy ledger).

Blender gives each extension one (``bpy.utils.extension_path_user``); when the code is
loaded as a legacy add-on instead (no ``bl_ext.`` package), a folder under Blender's
user config is used so nothing is ever written into the add-on's install folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

import bpy

log = logging.getLogger(__name__)


def user_dir(package: str, sub: str = "") -> Path:
    """A folder for this extension (created), optionally a named sub-folder of it."""
    if package.startswith("bl_ext."):
        try:
            return Path(bpy.utils.extension_path_user(package, path=sub, create=True))
        except (ValueError, OSError) as exc:
            log.warning("no extension user folder for %s: %s", package, exc)
    base = Path(bpy.utils.user_resource("CONFIG", path="shaman_submitter", create=True))
    folder = base / sub if sub else base
    folder.mkdir(parents=True, exist_ok=True)
    return folder
