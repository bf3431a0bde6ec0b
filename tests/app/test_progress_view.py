"""What the UI shows of a progress event (ProgressView) and the modal tick, on plain Python."""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import asdict, dataclass

from shaman_addon.app.progress_view import ProgressView, tick
from shaman_addon.progress import Phase, ProgressEvent


def _event(i: int, n: int) -> ProgressEvent:
    total = 5_000_000_000  # more than a 32-bit int: must reach the UI intact
    return ProgressEvent(
        phase=Phase.HASHING if i < n // 2 else Phase.UPLOADING,
        files_done=i,
        files_total=n,
        hash_bytes_done=min(total, i * 600_000),
        hash_bytes_total=total,
        upload_bytes_done=i * 500_000,
        upload_bytes_total=total,
        current_file=f"textures/t_{i:05d}.png",
        speed_bps=1e6 + i,
        eta_s=float(n - i),
        message=f"event {i}",
    )


@dataclass(frozen=True)
class _Tick:
    """One tick: the event it applied, and how long it took by the injected clock."""

    applied: ProgressEvent | None
    elapsed: float


def _timed_tick(q: queue.SimpleQueue[ProgressEvent], view: object, budget_s: float,
                clock: Callable[[], float]) -> _Tick:
    reads: list[float] = []

    def watched() -> float:
        reads.append(clock())
        return reads[-1]

    applied = tick(q, view, budget_s=budget_s, clock=watched)
    return _Tick(applied, reads[-1] - reads[0] if reads else 0.0)


class _CountingView(ProgressView):
    applied = 0

    def __setattr__(self, name: str, value: object) -> None:
        if name == "phase":
            type(self).applied += 1
        super().__setattr__(name, value)


def test_drain_of_10000_events_lands_on_the_last_and_keeps_every_tick_in_budget() -> None:
    n = 10_000
    events = [_event(i, n) for i in range(n)]
    q: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    for ev in events:
        q.put(ev)
    # The injected clock moves one unit per reading: the drain reads it once per event,
    # so a budget of 40 units lets a tick take about 40 events.
    now = [0]

    def clock() -> float:
        now[0] += 1
        return float(now[0])

    view = _CountingView()
    _CountingView.applied = 0
    reports = []
    while True:
        rep = _timed_tick(q, view, 40, clock)
        if rep.applied is None:
            break
        reports.append(rep)
    assert max(r.elapsed for r in reports) <= 40
    assert len(reports) >= n // 41  # the budget really split the work over many ticks
    assert _CountingView.applied == len(reports)  # one apply per tick: only the newest
    assert reports[-1].applied is events[-1]
    expected = ProgressView.of(events[-1])
    assert asdict(view) == asdict(expected)
    assert expected.bytes_text == "5.0/5.0 GB"  # 4,999,500,000 of 5e9 bytes
    assert expected.files_done == n - 1 and expected.phase == "uploading"


def test_a_final_event_is_applied_at_once_and_an_empty_queue_costs_nothing() -> None:
    q: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    view = ProgressView()
    assert tick(q, view) is None
    assert view == ProgressView()
    q.put(_event(1, 10))
    q.put(ProgressEvent(Phase.CANCELLED, message="The submission was cancelled."))
    q.put(_event(2, 10))  # stale: nothing after a final event matters
    applied = tick(q, view)
    assert view.phase == "cancelled"
    assert view.status_line == "Cancelled: The submission was cancelled."
    assert applied is not None and applied.phase is Phase.CANCELLED


def test_progress_fields_say_phase_files_bytes_speed_and_eta() -> None:
    ev = ProgressEvent(
        phase=Phase.UPLOADING, files_done=3, files_total=12, upload_bytes_done=1_500_000,
        upload_bytes_total=12_000_000, current_file="textures/wall.png", speed_bps=2_500_000,
        eta_s=125.0,
    )
    f = ProgressView.of(ev)
    assert f.bar_text == "Uploading · 3/12 files · 1.5/12.0 MB · 2.5 MB/s · ETA 2 min 05 s"
    assert 0 < f.fraction < 1
    assert f.current_file == "textures/wall.png"
