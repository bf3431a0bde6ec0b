"""What the fault, bad-input and security suites share: a look at a Shaman server's disk,
checkout checks through the symlinks, the checksum cache's consistency, and a seam on
the progress queue to act at an exact phase. Their small productions are real .blend
files from ``blend_templates`` (``Project``).

Plain helpers (no fixtures): ``fault_report`` holds the report fixture.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shaman_addon.progress import Phase, ProgressEvent
from shaman_addon.shaman.client import ClientSettings
from shaman_addon.submit import CACHE_FILE_NAME, Submission, SubmitOptions, SubmitResult

SAFETY_S = 120.0  # only a guard against a hang, never a pass/fail threshold


# -- the options of every submission in the fault table ---------------------------------


FAST: dict[str, Any] = {"backoff_s": 0.01, "max_attempts": 4, "connect_timeout": 2.0,
                        "read_timeout": 20.0}
"""The table's default client settings: short back-off, bounded waits."""


class Options:
    """Makes the table's options; ``strategy`` holds the upload strategy's settings,
    applied on top of every test's own (empty until there is more than one strategy)."""

    def __init__(self, strategy: dict[str, Any]) -> None:
        self.strategy = strategy

    @property
    def fast(self) -> ClientSettings:
        """The settings a test gets unless it asks for others."""
        return self.client(**FAST)

    def client(self, **fields: Any) -> ClientSettings:
        """Client settings with exactly ``fields`` (the rest at their defaults), plus the
        upload strategy under test."""
        return ClientSettings(**{**fields, **self.strategy})

    def __call__(self, url: str, tmp_path: Path, *, client: dict[str, Any] | None = None,
                 **kw: Any) -> SubmitOptions:
        """Options for a submission to ``url`` with the cache in ``tmp_path/cache``;
        ``client`` replaces the ``FAST`` client settings."""
        kw.setdefault("cache_dir", tmp_path / "cache")
        settings = self.client(**(FAST if client is None else client))
        return SubmitOptions(server_url=url, client_settings=settings, **kw)


def sha_of(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    n = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


# -- the server's disk -------------------------------------------------------------------


@dataclass
class DiskState:
    stored: set[tuple[str, int]]
    uploading: list[str]
    checkouts: list[str]  # top-level folders under jobs/
    jobs_entries: list[str]  # every path under jobs/, relative

    def describe(self) -> str:
        return (f"{len(self.stored)} blobs stored, {len(self.uploading)} in uploading/, "
                f"{len(self.checkouts)} checkout(s)")


def disk_state(storage: Path) -> DiskState:
    """Read the server's storage folder the way a person would look at it."""
    stored: set[tuple[str, int]] = set()
    stored_dir = storage / "file-store" / "stored"
    if stored_dir.is_dir():
        for blob in stored_dir.glob("*/*/*.blob"):
            sha = blob.parent.parent.name + blob.parent.name
            stored.add((sha, int(blob.stem)))
    uploading_dir = storage / "file-store" / "uploading"
    uploading = (
        sorted(str(p.relative_to(uploading_dir)) for p in uploading_dir.rglob("*")
               if not p.is_dir())
        if uploading_dir.is_dir() else []
    )
    jobs = storage / "jobs"
    checkouts = sorted(p.name for p in jobs.iterdir()) if jobs.is_dir() else []
    entries = sorted(str(p.relative_to(jobs)) for p in jobs.rglob("*")) if jobs.is_dir() else []
    return DiskState(stored, uploading, checkouts, entries)


def check_checkout(storage: Path, checkout_path: str, expected: dict[str, Path | bytes]) -> int:
    """The checkout holds exactly ``expected``: each a relative symlink into the store whose
    bytes (read through the link) are the expected ones. Returns the file count."""
    folder = storage / "jobs" / checkout_path
    stored_dir = (storage / "file-store" / "stored").resolve()
    found = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_symlink() or p.is_file()
    )
    assert found == sorted(expected), (found, sorted(expected))
    for rel, want in expected.items():
        link = folder / rel
        assert link.is_symlink(), f"{rel} is not a symlink"
        assert not os.readlink(link).startswith("/"), f"{rel} links absolutely"
        target = link.resolve()
        assert target.is_relative_to(stored_dir), f"{rel} -> {target} is outside the store"
        data = want if isinstance(want, bytes) else Path(want).read_bytes()
        assert link.read_bytes() == data, f"{rel}: wrong bytes in the checkout"
    return len(expected)


def blend_paths_stay_inside(storage: Path, checkout_path: str) -> int:
    """Every path stored in every .blend of the checkout is ``//``-relative and leads
    inside the checkout (read through the symlinks, as Blender on a worker opens them);
    returns how many paths were checked."""
    from shaman_addon.collect.trace import trace_blend

    folder = storage / "jobs" / checkout_path
    checked = 0
    for blend in sorted(folder.rglob("*.blend")):
        for ref in trace_blend(blend).refs:
            assert ref.path.startswith("//"), f"{blend}: {ref.referrer} -> {ref.path!r}"
            target = os.path.normpath(os.path.join(blend.parent, ref.path[2:]))
            assert Path(target).is_relative_to(folder), f"{blend}: {ref.path!r} leaves it"
            checked += 1
    return checked


# -- the local side ----------------------------------------------------------------------


def cache_state(cache_dir: Path) -> tuple[int, int]:
    """(rows, rows checked against the file on disk); every row that still describes the
    file on disk (same size and mtime) must hold its true SHA-256: nothing half-written."""
    path = cache_dir / CACHE_FILE_NAME
    if not path.exists():
        return 0, 0
    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT path, size, mtime_ns, sha256 FROM checksums").fetchall()
    finally:
        conn.close()
    checked = 0
    for p, size, mtime_ns, sha in rows:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue
        if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
            continue
        assert sha_of(Path(p)) == (sha, size), f"cache row for {p} holds a wrong checksum"
        checked += 1
    return len(rows), checked


def pack_leftovers(temp_root: Path) -> list[Path]:
    """Temporary rewritten copies (``shaman-pack-*``) left in a temp folder."""
    return sorted(temp_root.glob("shaman-pack-*")) if temp_root.is_dir() else []


# -- acting at an exact moment -----------------------------------------------------------


class PhaseHook:
    """A progress queue that runs ``action`` once, on the worker thread, the first time
    the submission enters ``phase``: the run waits while it acts, so the fault lands at
    exactly that point (event ordering, no sleeps)."""

    def __init__(self, phase: Phase, action: Callable[[], None]) -> None:
        self.phase = phase
        self.action = action
        self.fired = threading.Event()
        self.events: list[ProgressEvent] = []
        self._q: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()

    def put(self, event: ProgressEvent) -> None:
        self.events.append(event)
        if event.phase is self.phase and not self.fired.is_set():
            self.fired.set()
            self.action()

    def put_nowait(self, event: ProgressEvent) -> None:
        self.put(event)

    def get_nowait(self) -> ProgressEvent:
        raise queue.Empty

    def empty(self) -> bool:
        return True

    @property
    def phases(self) -> list[Phase]:
        out: list[Phase] = []
        for e in self.events:
            if not out or out[-1] is not e.phase:
                out.append(e.phase)
        return out


def cancel_from_another_thread(sub: Submission) -> None:
    """Call ``sub.cancel()`` the way a UI does (another thread) and wait until it returned."""
    t = threading.Thread(target=sub.cancel, daemon=True)
    t.start()
    t.join(SAFETY_S)


class Background:
    """Run a submission on a thread; the test acts meanwhile, then ``join()``s."""

    def __init__(self, sub: Submission) -> None:
        self.sub = sub
        self.error: BaseException | None = None
        self.result: SubmitResult | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._go, daemon=True)
        self.thread.start()

    def _go(self) -> None:
        try:
            self.result = self.sub.run()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def join(self) -> None:
        self.thread.join(SAFETY_S)
        assert not self.thread.is_alive(), "the submission did not stop"


def wait_for(condition: Callable[[], bool], what: str = "condition") -> None:
    gate = threading.Event()
    for _ in range(int(SAFETY_S / 0.005)):
        if condition():
            return
        gate.wait(0.005)
    raise AssertionError(f"{what} never came true")


def submit(blend: Path, opts: SubmitOptions, **kw: Any) -> SubmitResult:
    return Submission(blend, opts, **kw).run()


def error_of(call: Callable[[], Any]) -> BaseException:
    """The exception ``call`` raises (the test fails if it returns)."""
    try:
        value = call()
    except BaseException as exc:
        return exc
    raise AssertionError(f"expected a failure, got {value!r}")
