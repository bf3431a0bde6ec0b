"""Checkout paths: the single place where a file's location becomes a path in the checkout.

The server does not check the paths it is given: a ``..`` part or an absolute path can put
a symlink outside the checkout directory. So every checkout path is made here, by
construction safe (relative, ``/``-separated, no ``.``/``..``/empty part, no drive letter,
no backslash, no control character) and unique (distinct files never share one):
characters that cannot appear are percent-escaped, and ``%`` itself is escaped, so the
mapping is one-to-one. Every path made here is checked against the one rule,
``shaman.protocol.is_safe_checkout_path``, before it is handed out.
"""

from __future__ import annotations

import functools
import posixpath
import re
import unicodedata
from collections.abc import Iterable
from pathlib import PurePath, PurePosixPath, PureWindowsPath

from ..errors import PathTooLong, UnsafeCheckoutPath
from ..shaman.protocol import has_empty_or_dot_part, is_safe_checkout_path

OUTSIDE_DIR = "_outside_project"

# Most file systems limit one name to 255 bytes; keep some room for the server's own
# checkout directory in front of the whole path.
MAX_PART_BYTES = 255
MAX_PATH_BYTES = 3000

_DRIVE_RX = re.compile(r"^[A-Za-z]:")


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a raw byte smuggled in by os.fsdecode (not UTF-8)
        return f"%{code - 0xDC00:02X}"
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def _needs_escape(ch: str) -> bool:
    if ch in "%\\/:":
        return True
    cat = unicodedata.category(ch)
    return cat in ("Cc", "Cs")  # control characters, lone surrogates


_PLAIN_ASCII_PART = re.compile(r"[^%\\/:\x00-\x1f\x7f]+")
"""ASCII with nothing to escape: most names, returned as they are without a look at each
character (thousands of files per submission)."""


_PLAIN_ASCII_REL = re.compile(r"[^%\\:\x00-\x1f\x7f]+")
"""The same, over a whole relative path of plain parts (``/`` between them)."""


def escape_part(part: str) -> str:
    """Make one path component safe; injective, and readable for ordinary names."""
    if part not in (".", "..") and part.isascii() and _PLAIN_ASCII_PART.fullmatch(part):
        return part
    out = "".join(_escape_char(c) if _needs_escape(c) else c for c in part)
    if out in ("", ".", ".."):
        # Cannot come from a normalised path, but never let one through.
        out = "".join(f"%{b:02X}" for b in out.encode()) or "%00"
    return out


def _checked(result: str, source: str) -> str:
    """``result`` if it is a safe checkout path of a length file systems take."""
    if not is_safe_checkout_path(result):  # never, by construction; a bug if it happens
        raise UnsafeCheckoutPath(f"{source} was given the unsafe checkout path {result!r}")
    if len(result) * 4 <= MAX_PART_BYTES:  # UTF-8 takes at most 4 bytes per character
        return result
    for part in result.split("/"):
        if len(part.encode("utf-8")) > MAX_PART_BYTES:
            raise PathTooLong(
                f"the file name {part[:60]!r}... of {source} is too long for the checkout "
                f"({len(part.encode('utf-8'))} bytes, at most {MAX_PART_BYTES})"
            )
    if len(result.encode("utf-8")) > MAX_PATH_BYTES:
        raise PathTooLong(
            f"the checkout path of {source} would be {len(result.encode('utf-8'))} bytes "
            f"long, more than {MAX_PATH_BYTES}; move it to a shorter folder"
        )
    return result


def _flavour(path: PurePath | str) -> type[PurePath]:
    if isinstance(path, PureWindowsPath):
        return PureWindowsPath
    if isinstance(path, PurePosixPath):
        return PurePosixPath
    text = str(path)
    if _DRIVE_RX.match(text) or text.startswith("\\\\"):
        return PureWindowsPath
    return PurePosixPath



def _resolve_dots(parts: Iterable[str]) -> list[str]:
    """Drop empty and ``.`` parts and let ``..`` eat the part before it (never above the root)."""
    out: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return out

def _absolute_parts(path: PurePath | str) -> tuple[list[str], str]:
    """Anchor-free, lexically normalised parts of an absolute path, and its anchor label.

    ``..`` is resolved lexically (never above the root), ``.`` and empty parts vanish.
    The label is ``""`` for a POSIX root, ``"C"`` for a drive, ``"UNC/server/share"``.
    """
    if (
        isinstance(path, str)
        and path.startswith("/")
        and not path.startswith("//")
        and "\\" not in path
    ):  # the common case on POSIX: plain string work, no pathlib
        return _resolve_dots(path.split("/")), ""
    flavour = _flavour(path)
    p = flavour(path) if not isinstance(path, flavour) else path
    label = ""
    if flavour is PureWindowsPath:
        drive = p.drive
        if drive.startswith("\\\\") or drive.startswith("//"):
            bits = [b for b in re.split(r"[\\/]+", drive) if b]
            label = "/".join(["UNC", *(escape_part(b) for b in bits)])
        elif drive:
            label = drive[0].upper()
        rest = p.parts[1:] if p.anchor else p.parts
    else:
        rest = p.parts[1:] if p.anchor else p.parts
    return _resolve_dots(rest), label


def outside_project_path(abs_path: PurePath | str) -> str:
    """A stable, readable place for a file outside the project.

    ``/a/b/c.png`` -> ``_outside_project/a/b/c.png``, ``C:\\x\\y`` ->
    ``_outside_project/C/x/y``, ``\\\\srv\\share\\x`` -> ``_outside_project/UNC/srv/share/x``.
    """
    parts, label = _absolute_parts(abs_path)
    pieces = [OUTSIDE_DIR]
    if label:
        pieces.append(label)
    pieces.extend(escape_part(p) for p in parts)
    return _checked("/".join(pieces), str(abs_path))


def to_checkout_path(abs_path: PurePath | str, project_root: PurePath | str) -> str:
    """THE way a file (or folder) location becomes its path in the checkout.

    Inside ``project_root`` a file keeps its relative path; anywhere else it lands under
    ``_outside_project/`` (see ``outside_project_path``). Both arguments are absolute;
    they are normalised lexically (no file-system access) so this is cheap and pure.
    """
    if isinstance(abs_path, str) and isinstance(project_root, str):
        rel = _plain_relative(abs_path, project_root)
        if rel is not None:  # the common case: no pathlib
            if (rel.isascii() and _PLAIN_ASCII_REL.fullmatch(rel)
                    and rel.split("/", 1)[0] != OUTSIDE_DIR):
                return _checked(rel, abs_path)  # nothing to escape in any part
            return _inside_project(rel.split("/"), abs_path)
    parts, label = _absolute_parts(abs_path)
    root_parts, root_label = _absolute_parts(project_root)
    flavour = _flavour(abs_path)
    if flavour is PureWindowsPath:  # Windows paths compare case-insensitively
        same_anchor = label.casefold() == root_label.casefold()
        inside = [p.casefold() for p in parts[: len(root_parts)]] == [
            p.casefold() for p in root_parts
        ]
    else:
        same_anchor = label == root_label
        inside = parts[: len(root_parts)] == root_parts
    if same_anchor and inside and len(parts) > len(root_parts):
        return _inside_project(parts[len(root_parts):], str(abs_path))
    return outside_project_path(abs_path)


def _inside_project(rel: list[str], source: str) -> str:
    escaped = [escape_part(p) for p in rel]
    if escaped[0] == OUTSIDE_DIR:
        # A real folder of that name must not mix with mapped outside files.
        escaped[0] = "%5F" + OUTSIDE_DIR[1:]
    return _checked("/".join(escaped), source)


def is_plain_posix(path: str) -> bool:
    """Absolute, ``/``-separated, no empty, ``.`` or ``..`` part, no backslash: a path
    lexical normalisation leaves as it is."""
    return path.startswith("/") and "\\" not in path and not has_empty_or_dot_part(path[1:])


def _plain_relative(abs_path: str, root: str) -> str | None:
    """``abs_path`` relative to ``root`` when both are plain POSIX paths and the first
    lies below the second; None otherwise (the general way decides)."""
    if not (is_plain_posix(abs_path) and (root == "/" or is_plain_posix(root))):
        return None
    prefix = root if root == "/" else root + "/"
    if not abs_path.startswith(prefix) or len(abs_path) == len(prefix):
        return None
    return abs_path[len(prefix):]


def blend_relative(target: str, blend_checkout_path: str) -> str:
    """The ``//``-relative path a .blend at ``blend_checkout_path`` uses to reach ``target``.

    Both are checkout paths; the result may contain ``../`` (only inside .blend files).
    """
    # Computed on the parts: both are normalised relative paths, and posixpath.relpath
    # would ask the OS for the working directory twice per call (thousands of files).
    start = _folder_parts(blend_checkout_path)
    parts = [p for p in target.split("/") if p not in ("", ".")]
    common = 0
    for a, b in zip(start, parts, strict=False):
        if a != b:
            break
        common += 1
    rel = "/".join([".."] * (len(start) - common) + parts[common:]) or "."
    return "//" + rel


@functools.lru_cache(maxsize=64)
def _folder_parts(checkout_path: str) -> tuple[str, ...]:
    """The folder parts of a .blend's checkout path (asked once per stored path)."""
    return tuple(p for p in posixpath.dirname(checkout_path).split("/") if p not in ("", "."))


def case_collisions(paths: Iterable[str]) -> list[tuple[str, ...]]:
    """Groups of checkout paths that differ only in letter case (trouble on macOS/Windows)."""
    groups: dict[str, set[str]] = {}
    folders: set[str] = set()  # a folder seen once was entered with all its parents
    for p in paths:
        groups.setdefault(p.casefold(), set()).add(p)
        # Folders can collide too: a/X.png and A/y.png end up in one folder on such disks.
        parent = posixpath.dirname(p)
        while parent and parent not in folders:
            folders.add(parent)
            groups.setdefault(parent.casefold() + "/", set()).add(parent + "/")
            parent = posixpath.dirname(parent)
    return sorted(tuple(sorted(v)) for v in groups.values() if len(v) > 1)
