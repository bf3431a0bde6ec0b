"""Turn one stored path into the files it stands for on disk.

A stored path can mean one file, the frames of a sequence, the tiles of a UDIM set, a
whole cache folder, or a point-cache pattern. Folder listings are cached, so thousands of
files in a few folders cost a few ``listdir`` calls, not thousands of ``stat`` calls.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .paths import is_plain_posix
from .trace import CACHE_GLOB, DIRECTORY, LISTED, SEQUENCE, UDIM, Ref

log = logging.getLogger(__name__)

_WIN_ABS = re.compile(r"^[A-Za-z]:[\\/]")
_VERSION_DIR = re.compile(r"^\d+\.\d+$")
_TILE_TOKENS = {"<UDIM>": r"\d{4}", "<UVTILE>": r"u\d+_v\d+"}

FolderState = str | None
"""What a folder held when it was listed: a digest of its entries' names (``None``: it
could not be listed)."""


def canon(path: Path | str) -> str:
    """The one string form of an absolute path used as a key: ``/``-separated everywhere
    (Windows accepts forward slashes), so paths from .blend files and from the OS match."""
    text = os.path.abspath(path)
    return text.replace("\\", "/") if os.sep == "\\" else text


def resolve(blend_dir: Path | str, stored: str) -> str:
    """Absolute, lexically normalised path of a path stored in a .blend in ``blend_dir``.

    Like Blender: ``//`` means the .blend's folder, backslashes are separators, and
    ``..`` is resolved on the text (symlinks are not followed). The result is in
    ``canon`` form.
    """
    p = stored.replace("\\", "/")
    base = blend_dir if isinstance(blend_dir, str) else str(blend_dir)
    if os.sep == "\\":
        base = base.replace("\\", "/")
    if p.startswith("//"):
        p = base.rstrip("/") + "/" + p[2:]
    elif not (p.startswith("/") or _WIN_ABS.match(p)):
        p = base.rstrip("/") + "/" + p
    if is_plain_posix(p):
        return p  # most stored paths: nothing to normalise (thousands per .blend)
    out = posixpath.normpath(p)
    if os.sep == "/" and out.startswith("//"):
        out = "/" + out.lstrip("/")  # POSIX: '//x' is just '/x' (on Windows: a UNC path)
    return out


@dataclass
class Expanded:
    files: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class Expander:
    """Expands references; remembers folder listings and install-folder checks."""

    def __init__(self) -> None:
        self._listings: dict[str, list[str] | None] = {}
        self._install_dirs: dict[str, bool] = {}
        self._versions: dict[str, bool] = {}  # folders named like 4.2 looked at
        self.stats: dict[str, os.stat_result] = {}
        """The ``lstat`` of each regular file the last ``expand`` found by one look: the
        collector takes them (and empties this) so the file is not looked at again."""
        self.listed: dict[str, FolderState] = {}
        """Every folder whose listing decided what a reference stands for (sequences,
        tiles, caches), as it was just before it was listed: a later collection may reuse
        this one's outcome only while they are the same (``snapshot``)."""

    def listdir(self, folder: str) -> list[str] | None:
        try:
            return self._listings[folder]
        except KeyError:
            pass
        try:
            names: list[str] | None = sorted(os.listdir(folder))
        except OSError:
            names = None
        self._listings[folder] = names
        self.listed[folder] = listing_state(names)
        return names

    def walk_files(self, folder: str) -> list[str]:
        """Every file below ``folder`` (a cache folder), each listed folder noted."""
        out: list[str] = []
        for dirpath, dirnames, filenames in os.walk(folder):
            self.listed.setdefault(dirpath, listing_state(sorted(dirnames + filenames)))
            dirnames.sort()
            out.extend(posixpath.join(dirpath, n) for n in sorted(filenames))
        return out

    def isfile(self, path: str) -> bool:
        # A plain look at the file: a listing would miss "Tex/A.png" found as "tex/a.png"
        # on case-insensitive disks, where Blender does find it.
        try:
            st = os.lstat(path)
        except (OSError, ValueError):
            return False
        if stat.S_ISREG(st.st_mode):
            self.stats[path] = st
            return True
        return stat.S_ISLNK(st.st_mode) and os.path.isfile(path)

    def expand(self, ref: Ref, blend_dir: Path | str, stored: str) -> Expanded:
        out = Expanded()
        path = resolve(blend_dir, stored)
        kind = ref.kind
        if kind == LISTED:
            for name in ref.members:
                f = resolve(blend_dir, posixpath.join(stored.replace("\\", "/"), name))
                (out.files if self.isfile(f) else out.missing).append(f)
            return out
        if kind == DIRECTORY:
            if os.path.isdir(path):
                out.files.extend(self.walk_files(path))
            else:
                self.listed.setdefault(path, None)
                log.debug("cache folder %s (%s) does not exist", path, ref.referrer)
            return out
        if kind in (SEQUENCE, UDIM, CACHE_GLOB):
            folder, name = posixpath.split(path)
            rx = _pattern(kind, name)
            names = self.listdir(folder) or []
            matches = [posixpath.join(folder, n) for n in names if rx is not None and rx.match(n)]
            matches = [m for m in matches if os.path.isfile(m)]
            if matches:
                out.files.extend(matches)
            elif kind != CACHE_GLOB:  # a cache that was never baked is not missing
                if kind == SEQUENCE and self.isfile(path):
                    out.files.append(path)
                else:
                    out.missing.append(path)
            return out
        # FILE, LIBRARY
        (out.files if self.isfile(path) else out.missing).append(path)
        return out

    def version_folders(self) -> dict[str, bool]:
        """The folders looked at as a possible installation (named like ``4.2``), and
        what they were: a new ``datafiles`` there would change what is skipped."""
        return dict(self._versions)

    def in_blender_install(self, path: str) -> bool:
        """True for files inside a Blender installation (``<X.Y>/datafiles``, ``scripts``).

        Every worker has its own; they are not project files.
        """
        cut = path.rfind("/")
        own = folder = path[:cut] if cut > 0 else posixpath.dirname(path)
        known = self._install_dirs.get(own)
        if known is not None:
            return known  # most files: a folder already looked at
        inside = False
        while folder and posixpath.dirname(folder) != folder:  # up to the root, once
            cached = self._install_dirs.get(folder)
            if cached is not None:
                inside = cached
                break
            if _VERSION_DIR.match(posixpath.basename(folder)):
                self._versions[folder] = inside = is_install_folder(folder)
                if inside:
                    self._install_dirs[folder] = True
                    break
            folder = posixpath.dirname(folder)
        self._install_dirs[own] = inside  # the next file of this folder asks no further
        return inside


def is_install_folder(folder: str) -> bool:
    """Is the folder named like ``4.2`` a Blender installation's (``datafiles``,
    ``scripts``)?"""
    return (os.path.isdir(posixpath.join(folder, "datafiles"))
            and os.path.isdir(posixpath.join(folder, "scripts")))


def listing_state(names: list[str] | None) -> FolderState:
    """``FolderState`` of sorted ``names`` (its entries' times are not part of it: a
    texture saved over with a new file leaves the names, and the outcome, as they were)."""
    if names is None:
        return None
    joined = "\0".join(names).encode("utf-8", "surrogateescape")
    return hashlib.sha256(joined).hexdigest()


def folder_state(folder: str) -> FolderState:
    """``FolderState`` of ``folder`` now."""
    try:
        return listing_state(sorted(os.listdir(folder)))
    except (OSError, ValueError):
        return None


def _pattern(kind: str, name: str) -> re.Pattern[str] | None:
    if kind == CACHE_GLOB:
        return re.compile(fnmatch.translate(name))
    if kind == UDIM:
        for token, rx in _TILE_TOKENS.items():
            if token in name:
                pre, post = name.split(token, 1)
                return re.compile(re.escape(pre) + rx + re.escape(post) + r"\Z")
        return re.compile(re.escape(name) + r"\Z")
    # SEQUENCE: the last run of digits in the name is the frame number.
    m = re.match(r"^(.*?)(\d+)(\D*)$", name)
    if not m:
        return re.compile(re.escape(name) + r"\Z")
    return re.compile(re.escape(m.group(1)) + r"\d+" + re.escape(m.group(3)) + r"\Z")
