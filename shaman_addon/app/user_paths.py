"""Where the command line keeps its checksum cache and history by default.

Blender gives the extension its own folder (``bpy.utils.extension_path_user``); the
command line follows the XDG convention so a studio can move it with one variable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

APP_DIR_NAME = "shaman-submitter"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """``$XDG_CACHE_HOME/shaman-submitter``, else ``~/.cache/shaman-submitter``; None
    when there is no home folder to find (HOME unset, a user without a passwd entry):
    the caller then runs without the cache and says so (``present.NO_CACHE_WARNING``).

    An empty or relative ``XDG_CACHE_HOME`` is ignored, as the XDG specification says.
    """
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / APP_DIR_NAME
    home = _home(env)
    if home is None:
        return None
    return Path(home) / ".cache" / APP_DIR_NAME


def _home(env: Mapping[str, str]) -> str | None:
    """$HOME, else the user's entry in the password database, else None."""
    home = env.get("HOME", "")
    if os.path.isabs(home):
        return home
    try:
        import pwd
    except ImportError:  # Windows: no password database, Path.home reads USERPROFILE
        try:
            return str(Path.home())
        except RuntimeError:
            return None
    try:
        found = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        log.debug("uid %d has no entry in the password database", os.getuid())
        return None
    return found if os.path.isabs(found) else None
