"""Progress snapshots, the throttling tracker and drain(), all on an injected clock."""

from __future__ import annotations

import queue
import threading
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shaman_addon.progress import Phase, ProgressEvent, ProgressTracker, drain


class FakeClock:
    """A clock that moves only when told (or by ``step`` at each reading)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 100.0
        self.step = step
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        value = self.now
        self.now += self.step
        return value


def _events(n: int) -> queue.SimpleQueue[ProgressEvent]:
    q: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    for i in range(n):
        q.put(ProgressEvent(Phase.UPLOADING, upload_bytes_done=i, upload_bytes_total=n))
    return q


def test_drain_applies_only_the_newest_once() -> None:
    q = _events(10_000)
    applied: list[ProgressEvent] = []
    got = drain(q, applied.append, clock=FakeClock(step=0.0))
    assert applied == [got]
    assert got is not None and got.upload_bytes_done == 9_999
    assert q.empty()


def test_drain_stops_when_the_budget_is_spent() -> None:
    q = _events(10_000)
    clock = FakeClock(step=0.001)  # every reading costs 1 ms
    applied: list[ProgressEvent] = []
    got = drain(q, applied.append, budget_s=0.004, clock=clock)
    assert len(applied) == 1 and got is applied[0]
    assert got.upload_bytes_done < 10  # a few events only, then it gave the UI back
    assert clock.readings <= 10
    assert not q.empty()
    calls = 1
    while not q.empty():
        drain(q, applied.append, budget_s=0.004, clock=clock)
        calls += 1
    # Every later call also applied once, in order, and the last applied is the newest.
    assert len(applied) == calls
    assert [e.upload_bytes_done for e in applied] == sorted(
        e.upload_bytes_done for e in applied
    )
    assert applied[-1].upload_bytes_done == 9_999


def test_drain_on_empty_queue_returns_none_without_applying() -> None:
    q: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    applied: list[ProgressEvent] = []
    assert drain(q, applied.append) is None
    assert applied == []


def test_drain_applies_a_final_event_at_once() -> None:
    q = _events(5)
    q.put(ProgressEvent(Phase.DONE, message="ok"))
    applied: list[ProgressEvent] = []
    got = drain(q, applied.append, clock=FakeClock())
    assert got is not None and got.phase is Phase.DONE


def test_tracker_throttles_byte_events_but_never_phase_changes() -> None:
    q: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    clock = FakeClock()
    tracker = ProgressTracker(q, clock=clock, min_interval_s=0.05)
    tracker.set_hash_total(1, 2 << 30)
    tracker.set_phase(Phase.HASHING)
    # A 2 GiB file in 1 MiB chunks, hashed at 1 GiB/s: 2048 chunks over 2 s.
    for _ in range(2048):
        clock.now += 1 / 1024
        tracker.hashed_bytes(1 << 20, "big.exr")
    tracker.file_hashed("big.exr")
    tracker.set_phase(Phase.CHECKING)
    tracker.finish(Phase.DONE, "all good")
    events = []
    while not q.empty():
        events.append(q.get_nowait())
    phases = [e.phase for e in events]
    assert phases[0] is Phase.HASHING
    assert phases[-2:] == [Phase.CHECKING, Phase.DONE]
    hashing = [e for e in events if e.phase is Phase.HASHING]
    # 2 s at one event per 50 ms: about 40, far fewer than 2048 chunks, enough to be smooth.
    assert 30 <= len(hashing) <= 45
    done = [e.hash_bytes_done for e in hashing]
    assert done == sorted(done)
    assert hashing[-1].hash_bytes_done >= (2 << 30) - 60 * (1 << 20)
    # Speed from the injected clock: 1 GiB/s.
    assert abs(hashing[-1].speed_bps - (1 << 30)) / (1 << 30) < 0.05
    assert hashing[-1].eta_s is not None and hashing[-1].eta_s < 0.1
    assert events[-1].fraction == 1.0


def test_tracker_phase_seconds_follow_the_clock() -> None:
    clock = FakeClock()
    tracker = ProgressTracker(None, clock=clock)
    clock.now += 1.0
    tracker.set_phase(Phase.HASHING)
    clock.now += 2.5
    tracker.set_phase(Phase.UPLOADING)
    clock.now += 4.0
    tracker.set_phase(Phase.CHECKING_OUT)
    clock.now += 0.5
    tracker.finish(Phase.DONE)
    assert tracker.phase_seconds() == {
        "collecting": 1.0,
        "hashing": 2.5,
        "uploading": 4.0,
        "checking out": 0.5,
    }


def test_tracker_is_safe_from_many_threads() -> None:
    q: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    tracker = ProgressTracker(q, clock=FakeClock(step=0.01))
    tracker.add_upload_work(8 * 1000, 8 * 1000 * 10)
    tracker.set_phase(Phase.UPLOADING)

    def work() -> None:
        for _ in range(1000):
            tracker.uploaded_bytes(10, "f")
            tracker.file_uploaded()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = tracker.snapshot()
    assert snap.upload_bytes_done == snap.upload_bytes_total == 80_000
    assert snap.files_done == snap.files_total == 8000
    assert snap.fraction > 0.85


def test_upload_bytes_can_be_taken_back_after_a_cut_off_upload() -> None:
    tracker = ProgressTracker(None, clock=FakeClock())
    tracker.add_upload_work(1, 100)
    tracker.set_phase(Phase.UPLOADING)
    tracker.uploaded_bytes(60)
    tracker.uploaded_bytes(-60)
    assert tracker.snapshot().upload_bytes_done == 0


def test_fraction_moves_by_bytes_and_never_leaves_0_1() -> None:
    half_hashed = ProgressEvent(Phase.HASHING, hash_bytes_done=50, hash_bytes_total=100)
    hashed = ProgressEvent(Phase.CHECKING, hash_bytes_done=100, hash_bytes_total=100)
    e2 = ProgressEvent(Phase.UPLOADING, hash_bytes_done=100, hash_bytes_total=100,
                       checked_bytes=100, upload_bytes_done=10, upload_bytes_total=100)
    e3 = replace(e2, upload_bytes_done=90)
    co = ProgressEvent(Phase.CHECKING_OUT)
    assert ProgressEvent(Phase.COLLECTING).fraction == 0.0
    assert 0 < half_hashed.fraction < hashed.fraction < e2.fraction < e3.fraction
    assert e3.fraction < co.fraction < 1.0
    assert ProgressEvent(Phase.DONE).fraction == 1.0
    # Nothing to upload: hashing all of it is nearly the whole bar.
    assert replace(hashed, checked_bytes=100).fraction == co.fraction
    weird = ProgressEvent(Phase.UPLOADING, upload_bytes_done=500, upload_bytes_total=100)
    assert 0.0 <= weird.fraction <= 1.0


@given(
    sizes=st.lists(st.integers(0, 10_000), min_size=1, max_size=40),
    needed=st.lists(st.booleans(), min_size=40, max_size=40),
    batch=st.integers(1, 10),
    overlap=st.booleans(),
)
def test_fraction_never_goes_back_in_a_submission(
    sizes: list[int], needed: list[bool], batch: int, overlap: bool
) -> None:
    """Hash, ask in batches (or all at the end), upload what is needed: the bar only
    moves forward, and reaches the checkout mark."""
    q: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    tracker = ProgressTracker(q, clock=FakeClock(step=1.0), min_interval_s=0.0)
    tracker.set_hash_total(len(sizes), sum(sizes))
    tracker.set_phase(Phase.HASHING)
    pending: list[int] = []
    to_upload: list[int] = []

    def ask(batch_sizes: list[int]) -> None:
        # As the pipeline does: count the upload work first, then mark the bytes checked.
        files = nbytes = 0
        for i, size in enumerate(batch_sizes):
            if needed[(len(to_upload) + i) % 40]:
                files, nbytes = files + 1, nbytes + size
                to_upload.append(size)
        tracker.answered(sum(batch_sizes), files, nbytes)

    for size in sizes:
        tracker.hashed_bytes(size)
        tracker.file_hashed()
        pending.append(size)
        if overlap and len(pending) >= batch:
            ask(pending)
            pending = []
            while to_upload:
                tracker.uploaded_bytes(to_upload[0])
                tracker.file_uploaded()
                to_upload.pop(0)
    tracker.set_phase(Phase.CHECKING)
    ask(pending)
    tracker.answered(None)
    tracker.set_phase(Phase.UPLOADING)
    for size in to_upload:
        tracker.uploaded_bytes(size)
        tracker.file_uploaded()
    tracker.set_phase(Phase.CHECKING_OUT)
    tracker.finish(Phase.DONE)
    fractions = [e.fraction for e in drain_list(q)]
    assert fractions == sorted(fractions)
    assert fractions[-2] == pytest.approx(0.95) and fractions[-1] == 1.0


def drain_list(q: queue.SimpleQueue[ProgressEvent]) -> list[ProgressEvent]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def test_status_line_words() -> None:
    e = ProgressEvent(
        Phase.UPLOADING,
        files_done=1204,
        files_total=3000,
        upload_bytes_done=212_400_000,
        upload_bytes_total=503_100_000,
        speed_bps=88_200_000,
        eta_s=3.2,
    )
    assert e.status_line() == (
        "Uploading 1,204/3,000 files, 212.4/503.1 MB, 88.2 MB/s, ETA 3 s"
    )
    assert ProgressEvent(Phase.FAILED, message="server gone").status_line() == (
        "Failed: server gone"
    )
    assert "Hashing 2/5 files" in ProgressEvent(
        Phase.HASHING, files_done=2, files_total=5
    ).status_line()
    assert "ETA 2 min 05 s" in ProgressEvent(
        Phase.HASHING, eta_s=125, speed_bps=1.0
    ).status_line()
    assert Phase.DONE.is_final and not Phase.UPLOADING.is_final
