"""Files a submission must not send without being told to, and files it must never read.

THE list of credential stores (one place): hidden files and folders in a home folder
that hold keys, tokens or passwords. A dependency at one of them (its own path or, for
a symlink, its target) is refused unless the person allows it explicitly. System
folders (``/proc``, ``/sys``, ``/dev``) are never read at all: a device can block
forever or never end, and a kernel file is not part of any project.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat

CREDENTIAL_STORES: tuple[str, ...] = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".netrc",
    ".pgpass",
    ".git-credentials",
    ".pypirc",
    ".npmrc",
    ".vault-token",
    ".kube",
    ".docker/config.json",
    ".password-store",
    ".config/gcloud",
    ".config/gh",
    ".config/hub",
    ".local/share/keyrings",
    ".gnome2/keyrings",
    ".terraform.d/credentials.tfrc.json",
)
"""Paths relative to a home folder; a dependency at or under one of them is refused.
They are matched as consecutive path parts anywhere in the path, so another account's
home (``/root/.ssh``, ``/home/other/.aws``) counts too."""

_STORE_RX = re.compile("(?:^|/)(" + "|".join(
    re.escape(store) for store in sorted(CREDENTIAL_STORES, key=len, reverse=True)) + ")(?=/|$)")
"""Any store as consecutive whole parts of a path: one search in C per file (a shot under
a hidden folder, say ``~/.projects``, asks this of every one of its 100,000 files)."""
_SLASHES = re.compile("/+")

SYSTEM_FOLDERS: dict[str, str] = {
    "/proc": "a live kernel file under /proc (process information, not project data)",
    "/sys": "a live kernel file under /sys (device settings, not project data)",
    "/dev": "a device under /dev (reading one can block forever or never end)",
}

_SYSTEM_PREFIXES = tuple(SYSTEM_FOLDERS)

ALLOW_HOW = ("allow it with --allow-credential-files on the command line, or the "
             "preference 'Send credential files' in Blender")


def credential_store(path: str) -> str | None:
    """The credential store (an entry of ``CREDENTIAL_STORES``) ``path`` lies in, else None."""
    text = path.replace("\\", "/")
    if "/." not in text:  # every store starts with a hidden part: most paths end here
        return None
    if "//" in text:
        text = _SLASHES.sub("/", text)
    found = _STORE_RX.search(text)
    return None if found is None else found.group(1)


def system_file(path: str) -> str | None:
    """What a path under ``/proc``, ``/sys`` or ``/dev`` is, in words; else None."""
    if os.sep != "/" or not path.startswith(_SYSTEM_PREFIXES):  # most paths end here
        return None
    for folder, what in SYSTEM_FOLDERS.items():
        if path == folder or path.startswith(folder + "/"):
            return what
    return None


class RealPaths:
    """Symlink targets of many files at little cost: each folder is resolved once, and a
    file is resolved on its own only when it is a symlink itself."""

    def __init__(self) -> None:
        self._folders: dict[str, str] = {}

    def real(self, path: str, lst: os.stat_result | None = None) -> tuple[str, bool]:
        """The file's real path, and whether it is a regular file (False also when it
        cannot be looked at): one ``lstat`` (none when ``lst`` is given), one more
        ``stat`` for a symlink."""
        folder, name = posixpath.split(path)
        real_folder = self._folders.get(folder)
        if real_folder is None:
            real_folder = os.path.realpath(folder)
            self._folders[folder] = real_folder
        try:
            st = os.lstat(path) if lst is None else lst
            if stat.S_ISLNK(st.st_mode):
                return os.path.realpath(path), os.path.isfile(path)
        except OSError:
            return posixpath.join(real_folder, name), False
        return posixpath.join(real_folder, name), stat.S_ISREG(st.st_mode)


def is_inside(path: str, root: str) -> bool:
    """Is ``path`` the folder ``root`` or below it (both absolute and normalised)?"""
    return path == root or path.startswith(root.rstrip("/") + "/")
