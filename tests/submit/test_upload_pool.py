"""The upload pool's fast lane (shaman_addon.submit.upload_pool): which items it takes, what
happens to the ones it cannot settle, and that ``wait_idle`` waits for it too.

The lane here is a small recording one, not a network: the pool's own behaviour (routing,
fall-back, waiting, stopping) is what is under test. The lane's real connection is tested
against a scripted server in tests/shaman/test_pipelined.py and, end to end, by every
pipeline test against the local Shaman server.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import pytest

from shaman_addon.submit.upload_pool import UploadPool

GUARD_S = 10  # only a hang guard: every wait below ends on an event


@dataclass
class Item:
    name: str
    small: bool = True
    answer: str = "stored"  # what the lane's read gives: stored / refused / drop
    fail_start: bool = False


@dataclass
class RecordingLane:
    """Takes small items; 'drop' breaks the connection for everything written."""

    depth: int = 3
    started: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    resets: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    _written: deque[Item] = field(default_factory=deque)
    max_written: int = 0
    broken_items: list[str] = field(default_factory=list)

    def accepts(self, item: Item) -> bool:
        return item.small

    def start(self, item: Item) -> None:
        if item.fail_start:
            raise OSError("cannot read the file")
        self.started.append(item.name)
        self._written.append(item)
        self.max_written = max(self.max_written, len(self._written))

    def finish(self, item: Item) -> bool:
        assert self.gate.wait(GUARD_S)
        oldest = self._written.popleft()
        assert oldest is item  # answers are read in the order written
        if item.answer == "drop":
            raise ConnectionResetError("dropped")
        if item.answer == "stored":
            self.stored.append(item.name)
            return True
        return False

    def reset(self) -> None:
        self.resets += 1
        self._written.clear()

    def broken(self, items: list[Item]) -> None:
        self.broken_items.extend(item.name for item in items)


def _pool(lane: RecordingLane) -> tuple[UploadPool[Item], list[str]]:
    ordinary: list[str] = []
    lock = threading.Lock()

    def work(item: Item) -> None:
        with lock:
            ordinary.append(item.name)

    return UploadPool(2, work, name="test-upload", fast=[lane]), ordinary


def test_small_items_go_through_the_lane_large_ones_the_ordinary_way() -> None:
    lane = RecordingLane()
    lane.gate.set()
    pool, ordinary = _pool(lane)
    for i in range(10):
        pool.put(Item(f"s{i}"))
    pool.put(Item("big", small=False))
    pool.wait_idle(should_stop=lambda: False)
    assert lane.stored == [f"s{i}" for i in range(10)]
    assert ordinary == ["big"]
    assert lane.max_written <= lane.depth


def test_what_the_lane_cannot_settle_is_sent_the_ordinary_way() -> None:
    lane = RecordingLane()
    lane.gate.set()
    pool, ordinary = _pool(lane)
    items = [Item("ok1"), Item("refused", answer="refused"), Item("unreadable", fail_start=True),
             Item("ok2")]
    for item in items:
        pool.put(item)
    pool.wait_idle(should_stop=lambda: False)
    assert lane.stored == ["ok1", "ok2"]
    assert sorted(ordinary) == ["refused", "unreadable"]
    assert lane.resets == 0


def test_a_dropped_connection_sends_everything_written_again() -> None:
    """Items written behind the one whose read failed may never have reached the server:
    all of them go the ordinary way, and the lane forgets its connection."""
    lane = RecordingLane(depth=4)
    pool, ordinary = _pool(lane)
    for item in [Item("a", answer="drop"), Item("b"), Item("c")]:
        pool.put(item)
    lane.gate.set()
    pool.wait_idle(should_stop=lambda: False)
    assert lane.resets >= 1
    assert "a" in ordinary and "a" in lane.broken_items
    assert set(lane.broken_items) <= set(ordinary)  # told unclear before falling back
    assert sorted(ordinary + lane.stored) == ["a", "b", "c"]  # each settled exactly once


def test_wait_idle_waits_for_the_lane() -> None:
    lane = RecordingLane()
    pool, _ = _pool(lane)
    pool.put(Item("slow"))
    done = threading.Event()

    def waiter() -> None:
        pool.wait_idle(should_stop=lambda: False)
        done.set()

    t = threading.Thread(target=waiter)
    t.start()
    assert not done.wait(0.2)  # the lane still holds the item
    assert pool.backlog() == 1
    lane.gate.set()
    assert done.wait(GUARD_S)
    t.join(GUARD_S)
    assert lane.stored == ["slow"]


def test_stop_leaves_the_lane_and_drops_its_connection() -> None:
    lane = RecordingLane()
    pool, ordinary = _pool(lane)
    pool.put(Item("held"))
    pool.stop()
    lane.gate.set()
    pool.join(GUARD_S)
    assert lane.resets >= 1  # leaving always drops the connection
    assert ordinary == []
    pool.wait_idle(should_stop=lambda: True)


def test_an_ordinary_worker_failure_is_raised_by_wait_idle() -> None:
    lane = RecordingLane()
    lane.gate.set()

    def work(item: Item) -> None:
        raise RuntimeError(f"upload of {item.name} failed")

    pool: UploadPool[Item] = UploadPool(2, work, fast=[lane])
    pool.put(Item("refused", answer="refused"))
    with pytest.raises(RuntimeError, match="upload of refused failed"):
        pool.wait_idle(should_stop=lambda: False)
