"""Where the command line keeps its checksum cache and history by default.

Blender gives the extension its own folder (``bpy.utils.extension_path_user``); the
command line follows the XDG convention so a studio can move it with one variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

APP_DIR_NAME = "shaman-submitter"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/shaman-submitter``, else ``~/.cache/shaman-submitter``.

    An empty or relative ``XDG_CACHE_HOME`` is ignored, as the XDG specification says.
    """
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / APP_DIR_NAME
    return Path.home() / ".cache" / APP_DIR_NAME
