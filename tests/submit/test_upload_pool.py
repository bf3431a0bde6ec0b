"""The upload pool's lanes (shaman_addon.submit.upload_pool): which items they take, how
far they write ahead, what happens to the ones they cannot settle, and that
``wait_idle`` waits for them too.

The lane here is a small recording one, not a network: the pool's own behaviour (routing,
fall-back, waiting, stopping) is what is under test. The real pipelined connection is
tested with a live server in tests/shaman, and end to end by every submission test
against the local Shaman server.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from shaman_addon.submit.upload_pool import AheadLimit, UploadPool

GUARD_S = 10  # only a hang guard: every wait below ends on an event


@dataclass
class Item:
    name: str
    small: bool = True
    answer: str = "stored"  # what the lane's read gives: stored / refused / drop
    fail_start: bool = False


@dataclass
class RecordingLane:
    """Takes small items. Like a pipelined connection, 'drop' loses the connection: every
    answer still due on it is lost too, while later writes go on a new connection."""

    depth: int = 3
    started: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    resets: int = 0
    gate: threading.Event = field(default_factory=threading.Event)
    _written: deque[Item] = field(default_factory=deque)
    _connection: dict[str, int] = field(default_factory=dict)  # item -> connection number
    connections: int = 0
    max_written: int = 0
    broken_items: list[str] = field(default_factory=list)
    write_gate: threading.Event | None = None  # holds the first write until set

    def accepts(self, item: Item) -> bool:
        return item.small

    def write(self, item: Item) -> int:
        if item.fail_start:
            raise OSError("cannot read the file")
        if self.write_gate is not None:
            assert self.write_gate.wait(GUARD_S)
        self.started.append(item.name)
        self._written.append(item)
        self._connection[item.name] = self.connections
        self.max_written = max(self.max_written, len(self._written))
        return 1

    def read(self, item: Item) -> bool:
        assert self.gate.wait(GUARD_S)
        oldest = self._written.popleft()
        assert oldest is item  # answers are read in the order written
        if self._connection[item.name] != self.connections:
            raise ConnectionResetError("its connection was dropped")
        if item.answer == "drop":
            self.connections += 1
            raise ConnectionResetError("dropped")
        if item.answer == "stored":
            self.stored.append(item.name)
            return True
        return False

    def reset(self) -> None:
        self.resets += 1
        self._written.clear()

    def broken(self, items: Sequence[Item], error: BaseException) -> None:
        assert isinstance(error, ConnectionResetError)
        self.broken_items.extend(item.name for item in items)


def _pool(lane: RecordingLane) -> tuple[UploadPool[Item], list[str]]:
    ordinary: list[str] = []
    lock = threading.Lock()

    def work(item: Item) -> None:
        with lock:
            ordinary.append(item.name)

    pool = UploadPool(2, work, name="test-upload", lanes=[lane],
                      ahead=AheadLimit(requests=lane.depth))
    return pool, ordinary


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


def test_a_dropped_connection_sends_what_was_written_on_it_again() -> None:
    """Items written behind the one whose answer was lost, on the same connection, may
    never have reached the server: all of them go the ordinary way, told unclear. Items
    written on the connection made after the drop are the lane's as usual."""
    lane = RecordingLane(depth=3, write_gate=threading.Event())
    pool, ordinary = _pool(lane)
    for item in [Item("a", answer="drop"), Item("b"), Item("c"), Item("d"), Item("e")]:
        pool.put(item)
    lane.write_gate.set()  # all five queued: a, b and c are written before any answer
    lane.gate.set()
    pool.wait_idle(should_stop=lambda: False)
    assert lane.connections == 1 and lane.resets == 0  # the lane dropped it, not the pool
    assert {"a", "b", "c"} <= set(ordinary) and set(lane.broken_items) == set(ordinary)
    assert sorted(ordinary + lane.stored) == ["a", "b", "c", "d", "e"]  # each settled once
    assert "e" in lane.stored  # written after the drop: settled by the lane


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

    pool: UploadPool[Item] = UploadPool(2, work, lanes=[lane])
    pool.put(Item("refused", answer="refused"))
    with pytest.raises(RuntimeError, match="upload of refused failed"):
        pool.wait_idle(should_stop=lambda: False)
