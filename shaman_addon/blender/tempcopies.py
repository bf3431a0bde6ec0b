"""Temporary copies of unsaved work, and removing the ones a crash left behind.

When the artist's file has unsaved changes, the layer saves a copy next to the original
(so relative paths stay valid) under a hidden name, submits it and removes it. A crash
in between would leave it there, so each copy is also written to a small ledger in the
extension's user folder and the next start removes what its owner did not. No ``bpy``
here: plain file operations, safe on the worker thread.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = ".shaman-unsaved-"
_NAME = re.compile(r"^\.shaman-unsaved-(\d+)-[0-9a-f]{8}-.+\.blend$")
_lock = threading.Lock()


def temp_copy_path(original: Path, *, pid: int | None = None) -> Path:
    """A hidden, unique name beside ``original``, carrying the owner's process id."""
    owner = os.getpid() if pid is None else pid
    return original.parent / f"{PREFIX}{owner}-{secrets.token_hex(4)}-{original.name}"


def owner_pid(path: Path) -> int | None:
    """The process id in a temporary copy's name; None when it is not one of ours."""
    match = _NAME.match(path.name)
    return int(match.group(1)) if match else None


def pid_alive(pid: int) -> bool:
    """Is process ``pid`` running? (Never sends a signal on Windows: 0 is CTRL_C there.)"""
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def hide(path: Path) -> None:
    """Windows does not hide dot-files: set the hidden attribute there too."""
    if sys.platform != "win32":
        return
    import ctypes

    if not ctypes.windll.kernel32.SetFileAttributesW(str(path), 0x02):  # type: ignore[attr-defined]
        log.debug("could not hide %s", path)


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("could not remove the temporary copy %s: %s", path, exc)
        return False
    log.info("removed the temporary copy %s", path)
    return True


class Ledger:
    """One path per line: temporary copies that exist right now (or did at a crash)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> list[str]:
        try:
            return [ln for ln in self.path.read_text(encoding="utf-8").splitlines() if ln]
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("could not read %s: %s", self.path, exc)
            return []

    def _write(self, lines: list[str]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("could not write %s: %s", self.path, exc)

    def entries(self) -> list[Path]:
        with _lock:
            return [Path(ln) for ln in self._read()]

    def add(self, copy: Path) -> None:
        with _lock:
            lines = self._read()
            lines.append(str(copy))
            self._write(lines)

    def discard(self, copy: Path) -> None:
        with _lock:
            self._write([ln for ln in self._read() if ln != str(copy)])

    def cleanup_leftovers(self) -> list[Path]:
        """Remove copies whose owning Blender is gone; keep live ones listed."""
        removed: list[Path] = []
        with _lock:
            keep: list[str] = []
            for line in self._read():
                path = Path(line)
                pid = owner_pid(path)
                if pid is None:
                    continue  # not ours: never delete it
                if pid_alive(pid) and path.exists():
                    keep.append(line)
                    continue
                if _remove(path):
                    removed.append(path)
            self._write(keep)
        return removed


def sweep_dir(folder: Path) -> list[Path]:
    """Remove our temporary copies in ``folder`` whose owner process is gone.

    A second net for a lost ledger: runs before each submission beside the artist's file.
    """
    removed: list[Path] = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(PREFIX)]
    except OSError:
        return removed
    for path in candidates:
        pid = owner_pid(path)
        if pid is not None and not pid_alive(pid) and _remove(path):
            removed.append(path)
    return removed


def remove_copy(copy: Path, ledger: Ledger | None) -> None:
    """Remove a finished submission's copy and forget it."""
    _remove(copy)
    if ledger is not None:
        ledger.discard(copy)
