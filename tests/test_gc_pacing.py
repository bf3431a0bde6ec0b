"""The collector's pace is slowed while a submission runs and put back after, however
the blocks nest or overlap across threads, and left alone when it is off."""

from __future__ import annotations

import gc
import threading

import pytest

from shaman_addon.gc_pacing import FIRST_GENERATION, fewer_collections


@pytest.fixture
def default_pace():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_slowed_inside_and_put_back_after(default_pace: None) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (FIRST_GENERATION, 10, 10)
        with fewer_collections():
            assert gc.get_threshold()[0] == FIRST_GENERATION
        assert gc.get_threshold()[0] == FIRST_GENERATION  # the outer block still runs
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_threads_put_it_back_when_the_last_ends(default_pace: None) -> None:
    inside = threading.Barrier(3)
    leave = threading.Event()

    def submission() -> None:
        with fewer_collections():
            inside.wait(timeout=30)
            leave.wait(timeout=30)

    threads = [threading.Thread(target=submission) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait(timeout=30)
    assert gc.get_threshold()[0] == FIRST_GENERATION
    leave.set()
    for t in threads:
        t.join(timeout=30)
    assert gc.get_threshold() == (700, 10, 10)


def test_an_error_inside_still_puts_it_back(default_pace: None) -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("stop")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_disabled_or_slower_pace_is_left_alone(default_pace: None) -> None:
    gc.set_threshold(0, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (0, 10, 10)
    gc.set_threshold(50_000, 10, 10)
    with fewer_collections():
        assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_threshold() == (50_000, 10, 10)
