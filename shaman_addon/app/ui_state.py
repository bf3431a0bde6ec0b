"""What the Blender layer shows, computed on plain Python.

Blender's background mode has no event loop (timers and ``modal()`` never run there), so
everything the modal tick does lives here as plain functions over plain values: tests
call them directly with an injected clock, and the operator only copies their output
into its property group.
"""

from __future__ import annotations

import os
import queue
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Protocol

from ..errors import ShamanError

DEFAULT_TICK_BUDGET_S = 0.004
"""How long one modal tick may spend applying progress: far below a frame."""


class EventLike(Protocol):
    """The parts of ``progress.ProgressEvent`` the UI reads."""

    @property
    def phase(self) -> Any: ...
    @property
    def files_done(self) -> int: ...
    @property
    def files_total(self) -> int: ...
    @property
    def hash_bytes_done(self) -> int: ...
    @property
    def hash_bytes_total(self) -> int: ...
    @property
    def upload_bytes_done(self) -> int: ...
    @property
    def upload_bytes_total(self) -> int: ...
    @property
    def current_file(self) -> str: ...
    @property
    def speed_bps(self) -> float: ...
    @property
    def eta_s(self) -> float | None: ...
    @property
    def message(self) -> str: ...
    @property
    def fraction(self) -> float: ...

    def status_line(self) -> str: ...


# --- formatting ----------------------------------------------------------------------


def format_bytes(n: float) -> str:
    """Bytes in decimal units, as file managers show them (1.5 GB)."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


def format_speed(bps: float) -> str:
    return f"{format_bytes(bps)}/s" if bps > 0 else ""


def format_duration(seconds: float | None) -> str:
    """``1h 02m``, ``3m 05s``, ``42s``; '' for unknown."""
    if seconds is None or seconds < 0 or seconds != seconds:  # NaN
        return ""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h {(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


def phase_value(phase: Any) -> str:
    """The plain string of a ``Phase`` (a str Enum) or anything else."""
    return str(getattr(phase, "value", phase))


# --- live progress ------------------------------------------------------------------


def progress_fields(event: EventLike) -> dict[str, Any]:
    """Exactly what the progress property group holds for ``event``.

    Byte counts are given as text: Blender's IntProperty is 32-bit and a production is
    often larger than 2 GiB.
    """
    phase = phase_value(event.phase)
    if phase in ("hashing", "collecting"):
        done, total = event.hash_bytes_done, event.hash_bytes_total
    else:
        done, total = event.upload_bytes_done, event.upload_bytes_total
    bytes_text = f"{format_bytes(done)} / {format_bytes(total)}" if total else ""
    parts = [phase.capitalize()]
    if event.files_total:
        parts.append(f"{event.files_done}/{event.files_total} files")
    if bytes_text:
        parts.append(bytes_text)
    speed = format_speed(event.speed_bps)
    if speed:
        parts.append(speed)
    eta = format_duration(event.eta_s)
    if eta:
        parts.append(f"ETA {eta}")
    return {
        "phase": phase,
        "fraction": min(max(float(event.fraction), 0.0), 1.0),
        "files_done": int(event.files_done),
        "files_total": int(event.files_total),
        "bytes_text": bytes_text,
        "speed_text": speed,
        "eta_text": eta,
        "current_file": str(event.current_file or ""),
        "bar_text": " · ".join(parts),
        "status_line": event.status_line(),
        "message": str(event.message or ""),
    }


def apply_event(target: Any, event: EventLike) -> None:
    """Copy ``event`` onto ``target`` (a property group or any plain object)."""
    for name, value in progress_fields(event).items():
        setattr(target, name, value)


@dataclass
class ProgressView:
    """A plain stand-in for the property group: what tests and the CLI can hold."""

    phase: str = ""
    fraction: float = 0.0
    files_done: int = 0
    files_total: int = 0
    bytes_text: str = ""
    speed_text: str = ""
    eta_text: str = ""
    current_file: str = ""
    bar_text: str = ""
    status_line: str = ""
    message: str = ""


@dataclass(frozen=True)
class TickReport:
    """One modal tick: the event applied (if any), and the first and last reading of
    ``clock`` it made (no extra readings, so ``elapsed`` is the drain's own view)."""

    applied: EventLike | None
    started: float
    finished: float

    @property
    def elapsed(self) -> float:
        return self.finished - self.started


def tick(
    events: queue.SimpleQueue,
    target: Any,
    *,
    budget_s: float = DEFAULT_TICK_BUDGET_S,
    clock: Callable[[], float] = time.perf_counter,
) -> TickReport:
    """Everything ``modal()`` does with progress per timer tick.

    Drains the queue within ``budget_s`` and copies only the newest snapshot onto
    ``target``: each event is a full snapshot, so skipping older ones loses nothing.
    """
    from ..progress import drain

    reads: list[float] = []  # [first, last]

    def watched() -> float:
        now = clock()
        if reads:
            reads[1:] = [now]
        else:
            reads.append(now)
        return now

    applied = drain(events, lambda ev: apply_event(target, ev), budget_s=budget_s, clock=watched)
    first = reads[0] if reads else 0.0
    return TickReport(applied=applied, started=first, finished=reads[-1] if reads else first)


# --- results ------------------------------------------------------------------------


@dataclass(frozen=True)
class MissingRow:
    path: str
    referenced_by: str


def _referrers_text(referenced_by: Iterable[str]) -> str:
    names = [str(r) for r in referenced_by]
    return ", ".join(names)


def result_fields(result: Any) -> dict[str, Any]:
    """What the result area shows for a ``pipeline.SubmitResult`` (dry run or real)."""
    uploaded = f"{result.files_uploaded} files, {format_bytes(result.bytes_uploaded)}"
    stored = f"{result.files_already_stored} files, {format_bytes(result.bytes_already_stored)}"
    return {
        "dry_run": bool(result.dry_run),
        "checkout_path": str(result.checkout_path or ""),
        "worker_path": str(result.worker_blend_path or ""),
        "files_total": int(result.files_total),
        "total_text": f"{result.files_total} files, {format_bytes(result.bytes_total)}",
        "uploaded_text": uploaded,
        "stored_text": stored,
        "warnings": [str(w) for w in result.warnings],
        "missing": [
            MissingRow(str(m.path), _referrers_text(m.referenced_by)) for m in result.missing
        ],
    }


def result_lines(result: Any) -> list[str]:
    """The result in a few lines, for stdout (headless) and the operator's report."""
    f = result_fields(result)
    if f["dry_run"]:
        lines = [
            f"Dry run: {f['total_text']}; the server already has {f['stored_text']}; "
            f"to upload: {f['uploaded_text']}."
        ]
    else:
        lines = [
            f"Checkout: {f['checkout_path']}",
            f"Workers open: {f['worker_path']}",
            f"Uploaded {f['uploaded_text']}; already stored {f['stored_text']}.",
        ]
    if f["missing"]:
        lines.append(f"{len(f['missing'])} missing file(s):")
        lines.extend(f"  {m.path} (used by {m.referenced_by or '?'})" for m in f["missing"])
    lines.extend(f"Warning: {w}" for w in f["warnings"])
    return lines


def error_text(exc: BaseException) -> str:
    """The artist's sentence for a failure: ours as is, anything else named plainly."""
    if isinstance(exc, ShamanError):
        return str(exc)
    return f"Unexpected error ({type(exc).__name__}): {exc}"


# --- unsaved changes -----------------------------------------------------------------

UNSAVED_MODES = ("AUTO", "COPY", "DISK")


def wants_temp_copy(mode: str, *, is_dirty: bool, background: bool) -> bool:
    """Submit a temporary copy of what is in memory (True) or the saved file (False)?

    ``AUTO`` follows ``bpy.data.is_dirty`` in interactive Blender. In background mode
    Blender cannot tell (its "file saved" flag is only set by the event loop, which does
    not run there, so ``is_dirty`` is always True); there ``AUTO`` sends the file as
    saved, which also avoids re-saving it with this Blender's version. A script that
    changed the file asks for ``COPY``.
    """
    if mode == "COPY":
        return True
    if mode == "DISK":
        return False
    if mode != "AUTO":
        raise ValueError(f"unknown unsaved-changes mode {mode!r}; expected {UNSAVED_MODES}")
    return is_dirty and not background


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


# --- results rendered into a mapping (for JSON lines in tests and the headless path) ---


@dataclass
class SubmissionOutcome:
    """What a finished submission hands back to the main thread (plain values only)."""

    result: Any = None
    error: str = ""
    error_type: str = ""
    cancelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.error

    def to_json(self) -> Mapping[str, Any]:
        data: dict[str, Any] = {
            "ok": self.ok,
            "error": self.error,
            "error_type": self.error_type,
            "cancelled": self.cancelled,
        }
        if self.result is not None and hasattr(self.result, "to_json"):
            data["result"] = self.result.to_json()
        return data
