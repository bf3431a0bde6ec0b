"""Progress of a submission: snapshot events, the tracker that makes them, and ``drain``.

Worker threads (hashing, uploads) report bytes to one ``ProgressTracker``; it turns them
into ``ProgressEvent`` snapshots on a thread-safe queue, throttled so a 2 GB texture
does not flood the queue with one event per 1 MiB chunk. Each event is a complete
snapshot, so a consumer that falls behind (Blender's UI timer) can skip straight to the
newest one: that is what ``drain`` does, inside a small time budget.
"""

from __future__ import annotations

import enum
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .units import format_bytes_of, format_count, format_duration, format_rate

# Hashing and uploading fill the bar up to here, by bytes; the checkout takes the rest.
_CHECKOUT_START = 0.95


class Phase(enum.StrEnum):
    """Where a submission is; the last three are final."""

    COLLECTING = "collecting"
    HASHING = "hashing"
    CHECKING = "checking"
    UPLOADING = "uploading"
    CHECKING_OUT = "checking out"
    RENDER_JOB = "render job"  # checking it before any upload, submitting it after
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (Phase.DONE, Phase.FAILED, Phase.CANCELLED)


@dataclass(frozen=True)
class ProgressEvent:
    """A full snapshot of a submission's progress (never a delta).

    ``files_done``/``files_total`` count the current phase's files (hashed files while
    hashing, uploaded files while uploading); the byte fields are kept for both phases
    because hashing and uploading overlap. ``checked_bytes`` counts the hashed bytes the
    server has been asked about; the rest might all still need uploading.
    """

    phase: Phase
    files_done: int = 0
    files_total: int = 0
    hash_bytes_done: int = 0
    hash_bytes_total: int = 0
    upload_bytes_done: int = 0
    upload_bytes_total: int = 0
    checked_bytes: int = 0
    current_file: str = ""
    speed_bps: float = 0.0
    eta_s: float | None = None
    message: str = ""

    @property
    def fraction(self) -> float:
        """0..1 over the whole submission, by bytes: every byte is hashed, then sent if the
        server lacks it; the checkout takes the last 5 %.

        Until the server has been asked about a byte it counts as one to upload (an upper
        bound), so learning that the server already has it moves the bar forward, never
        back: an unchanged resubmission jumps from half-way to the checkout.
        """
        if self.phase is Phase.DONE:
            return 1.0
        if self.phase is Phase.CHECKING_OUT:
            return _CHECKOUT_START
        if self.phase is Phase.COLLECTING:
            return 0.0
        unasked = max(0, self.hash_bytes_total - self.checked_bytes)
        work = self.hash_bytes_total + self.upload_bytes_total + unasked
        if work <= 0:
            return 0.0
        done = min(self.hash_bytes_done, self.hash_bytes_total) + min(
            self.upload_bytes_done, self.upload_bytes_total
        )
        return max(0.0, min(_CHECKOUT_START * done / work, _CHECKOUT_START))

    def status_line(self) -> str:
        """One line for a status bar or a terminal, in plain words."""
        phase = self.phase
        if phase in (Phase.FAILED, Phase.CANCELLED):
            label = "Failed" if phase is Phase.FAILED else "Cancelled"
            return f"{label}: {self.message}" if self.message else label
        if phase is Phase.DONE:
            return self.message or f"Done: {format_count(self.files_total)} files"
        if phase in (Phase.COLLECTING, Phase.CHECKING, Phase.CHECKING_OUT, Phase.RENDER_JOB):
            words = {
                Phase.COLLECTING: "Collecting dependencies",
                Phase.CHECKING: "Asking the server which files it lacks",
                Phase.CHECKING_OUT: "Creating the checkout",
                Phase.RENDER_JOB: "Render job",
            }[phase]
            extra = self.message or self.current_file
            return f"{words}: {extra}" if extra else words
        if phase is Phase.HASHING:
            verb, done, total = "Hashing", self.hash_bytes_done, self.hash_bytes_total
        else:
            verb, done, total = "Uploading", self.upload_bytes_done, self.upload_bytes_total
        parts = [
            f"{verb} {format_count(self.files_done)}/{format_count(self.files_total)} files",
            format_bytes_of(done, total),
        ]
        if self.speed_bps > 0:
            parts.append(format_rate(self.speed_bps))
        if self.eta_s is not None:
            parts.append(f"ETA {format_duration(max(0.0, self.eta_s))}")
        return ", ".join(parts)


def drain(
    events: queue.SimpleQueue[ProgressEvent],
    apply: Callable[[ProgressEvent], None],
    *,
    budget_s: float = 0.004,
    clock: Callable[[], float] = time.perf_counter,
) -> ProgressEvent | None:
    """Take events until the queue is empty or ``budget_s`` is spent; apply the newest once.

    Never blocks, so it can run inside Blender's UI timer. Returns the event applied, or
    None when the queue was empty. Events left over are taken by the next call; since each
    is a snapshot, skipping the older ones loses nothing.
    """
    start = clock()
    newest: ProgressEvent | None = None
    while True:
        try:
            newest = events.get_nowait()
        except queue.Empty:
            break
        if newest.phase.is_final or clock() - start >= budget_s:
            # A final event is applied at once: nothing after it matters.
            break
    if newest is not None:
        apply(newest)
    return newest


class _Rate:
    """Smoothed bytes per second of one counter, from samples taken at event times."""

    def __init__(self, window_s: float = 0.5, weight: float = 0.3) -> None:
        self.window_s = window_s
        self.weight = weight
        self.speed = 0.0
        self._t: float | None = None
        self._b = 0

    def sample(self, now: float, total: int) -> float:
        if self._t is None or total < self._b:
            self._t, self._b = now, total
            return self.speed
        dt = now - self._t
        if dt >= self.window_s:
            inst = (total - self._b) / dt
            self.speed = inst if self.speed == 0 else (
                self.weight * inst + (1 - self.weight) * self.speed
            )
            self._t, self._b = now, total
        return self.speed


class _Counts:
    """The tracker's running state (mutable; an event is a frozen copy of it)."""

    __slots__ = (
        "checked_bytes",
        "current_file",
        "hash_bytes_done",
        "hash_bytes_total",
        "message",
        "phase",
        "upload_bytes_done",
        "upload_bytes_total",
    )

    def __init__(self) -> None:
        self.phase = Phase.COLLECTING
        self.message = ""
        self.current_file = ""
        self.hash_bytes_done = 0
        self.hash_bytes_total = 0
        self.upload_bytes_done = 0
        self.upload_bytes_total = 0
        self.checked_bytes = 0


class ProgressTracker:
    """Collects counts from any thread and puts throttled snapshots on the queue.

    At most one event per ``min_interval_s`` of the injected clock, plus one at every
    phase change and the final one, which are never dropped. ``phase_seconds`` says how
    long each phase lasted (by the same clock).
    """

    def __init__(
        self,
        events: queue.SimpleQueue[ProgressEvent] | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_interval_s: float = 0.05,
    ) -> None:
        self._events = events
        self._clock = clock
        self._min_interval = min_interval_s
        self._lock = threading.Lock()
        # Plain counters, turned into an event only when one is emitted: byte reports
        # come several times per file, thousands of files per submission.
        self._state = _Counts()
        self._hash_files = [0, 0]
        self._upload_files = [0, 0]
        self._last_emit: float | None = None
        self._phase_started = clock()
        self._phase_seconds: dict[str, float] = {}
        self._hash_rate = _Rate()
        self._upload_rate = _Rate()

    # -- what the pipeline reports -----------------------------------------------------
    def set_phase(self, phase: Phase, message: str = "", *, current_file: str = "") -> None:
        """Enter a phase (always emitted)."""
        with self._lock:
            now = self._clock()
            old = self._state.phase
            if phase is not old:
                spent = now - self._phase_started
                self._phase_seconds[old.value] = self._phase_seconds.get(old.value, 0.0) + spent
                self._phase_started = now
            st = self._state
            st.phase, st.message, st.current_file = phase, message, current_file
            self._emit_locked(now, force=True)

    def set_hash_total(self, files: int, nbytes: int) -> None:
        with self._lock:
            self._hash_files[1] = files
            self._state.hash_bytes_total = nbytes

    def hashed_bytes(self, nbytes: int, current_file: str = "") -> None:
        with self._lock:
            st = self._state
            st.hash_bytes_done += nbytes
            if current_file:
                st.current_file = current_file
            self._emit_locked(self._clock())

    def file_hashed(self, current_file: str = "", *, count: int = 1) -> None:
        with self._lock:
            self._hash_files[0] += count
            if current_file:
                self._state.current_file = current_file
            self._emit_locked(self._clock())

    def answered(self, checked: int | None, files: int = 0, nbytes: int = 0) -> None:
        """The server answered about ``checked`` more hashed bytes (None: all of them);
        ``files``/``nbytes`` of those need uploading. One step, so the bar never moves
        back between counting the new work and ticking off the checked bytes."""
        with self._lock:
            st = self._state
            value = st.hash_bytes_total if checked is None else st.checked_bytes + checked
            self._upload_files[1] += files
            st.checked_bytes = min(value, st.hash_bytes_total)
            st.upload_bytes_total += nbytes
            self._emit_locked(self._clock())

    def add_upload_work(self, files: int, nbytes: int) -> None:
        """More content turned out to be missing on the server."""
        with self._lock:
            self._upload_files[1] += files
            self._state.upload_bytes_total += nbytes
            self._emit_locked(self._clock())

    def uploaded_bytes(self, nbytes: int, current_file: str = "") -> None:
        """Bytes sent; negative to take back the bytes of an upload that was cut off."""
        with self._lock:
            st = self._state
            st.upload_bytes_done = max(0, st.upload_bytes_done + nbytes)
            if current_file:
                st.current_file = current_file
            self._emit_locked(self._clock())

    def file_uploaded(self, nbytes_not_sent: int = 0) -> None:
        """One content is on the server now; ``nbytes_not_sent`` counts as done too
        (someone else stored it while we waited)."""
        with self._lock:
            self._upload_files[0] += 1
            self._state.upload_bytes_done += nbytes_not_sent
            self._emit_locked(self._clock())

    def finish(self, phase: Phase, message: str = "") -> ProgressEvent:
        """The final event (DONE, FAILED or CANCELLED); always emitted."""
        self.set_phase(phase, message)
        return self.snapshot()

    # -- reading ------------------------------------------------------------------------
    def snapshot(self) -> ProgressEvent:
        with self._lock:
            return self._snapshot_locked(self._clock())

    def phase_seconds(self) -> dict[str, float]:
        with self._lock:
            out = dict(self._phase_seconds)
            current = self._state.phase
            if not current.is_final:
                now = self._clock()
                out[current.value] = out.get(current.value, 0.0) + now - self._phase_started
            return out

    def _snapshot_locked(self, now: float) -> ProgressEvent:
        st = self._state
        hash_speed = self._hash_rate.sample(now, st.hash_bytes_done)
        upload_speed = self._upload_rate.sample(now, st.upload_bytes_done)
        speed = 0.0
        eta: float | None = None
        files = (0, 0)
        if st.phase is Phase.HASHING:
            files = (self._hash_files[0], self._hash_files[1])
            speed = hash_speed
            remaining = st.hash_bytes_total - st.hash_bytes_done
        elif st.phase is Phase.UPLOADING:
            files = (self._upload_files[0], self._upload_files[1])
            speed = upload_speed
            remaining = st.upload_bytes_total - st.upload_bytes_done
        else:
            remaining = 0
            files = (self._hash_files[1], self._hash_files[1])
            if st.phase is Phase.COLLECTING:
                files = (0, 0)
        if speed > 0 and st.phase in (Phase.HASHING, Phase.UPLOADING):
            eta = max(0.0, remaining / speed)
        return ProgressEvent(
            phase=st.phase,
            files_done=files[0],
            files_total=files[1],
            hash_bytes_done=st.hash_bytes_done,
            hash_bytes_total=st.hash_bytes_total,
            upload_bytes_done=st.upload_bytes_done,
            upload_bytes_total=st.upload_bytes_total,
            checked_bytes=st.checked_bytes,
            current_file=st.current_file,
            speed_bps=speed,
            eta_s=eta,
            message=st.message,
        )

    def _emit_locked(self, now: float, force: bool = False) -> None:
        if self._events is None:
            return
        if not force and self._last_emit is not None and now - self._last_emit < (
            self._min_interval
        ):
            return
        self._last_emit = now
        self._events.put(self._snapshot_locked(now))
