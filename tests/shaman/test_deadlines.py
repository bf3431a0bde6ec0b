"""The overall deadline of a call (``shaman.deadlines``): a connection registered under a
guard is shut down when the deadline passes, so a read blocked on a server that sends
nothing (or drips) returns. Ordering only: the blocked read is the event waited for."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from shaman_addon.shaman import deadlines


@dataclass
class _Conn:
    sock: socket.socket | None


def test_a_read_blocked_past_the_deadline_is_cut() -> None:
    ours, theirs = socket.socketpair()
    try:
        ours.settimeout(30.0)  # a guard against a hang only
        with deadlines.guard(0.05) as call:
            assert call is not None
            deadlines.watch_current(_Conn(ours))
            data = ours.recv(10)  # the server sends nothing: only the deadline ends this
        assert data == b"" and call.expired
    finally:
        ours.close()
        theirs.close()


def test_a_call_done_in_time_is_left_alone() -> None:
    ours, theirs = socket.socketpair()
    try:
        with deadlines.guard(30.0) as call:
            assert call is not None
            deadlines.watch_current(_Conn(ours))
            theirs.sendall(b"ok")
            assert ours.recv(10) == b"ok"
        assert not call.expired
        call.expire()  # a late expiry of a finished call shuts nothing down
        theirs.sendall(b"again")
        assert ours.recv(10) == b"again"
    finally:
        ours.close()
        theirs.close()


def test_a_connection_registered_after_expiry_is_shut_at_once() -> None:
    ours, theirs = socket.socketpair()
    try:
        ours.settimeout(30.0)
        with deadlines.guard(0.0) as call:
            assert call is not None
            call.expire()
            deadlines.watch_current(_Conn(ours))
            assert ours.recv(10) == b""
    finally:
        ours.close()
        theirs.close()


def test_no_guard_means_no_deadline() -> None:
    with deadlines.guard(None) as call:
        assert call is None
        deadlines.watch_current(_Conn(None))  # nothing to watch it: no error


def test_many_quick_calls_leave_a_small_heap() -> None:
    for _ in range(5000):
        with deadlines.guard(3600.0):
            pass
    assert len(deadlines._watchdog._heap) <= 2 * deadlines._PRUNE_MIN


def test_settle_leaves_no_thread_once_nothing_is_in_flight() -> None:
    import threading

    with deadlines.guard(3600.0):
        assert any(t.name == "shaman-deadlines" for t in threading.enumerate())
    deadlines.settle(timeout=30.0)  # a guard against a hang only
    assert not any(t.name == "shaman-deadlines" for t in threading.enumerate())
    with deadlines.guard(0.0) as call:  # started again when needed
        ours, theirs = socket.socketpair()
        try:
            ours.settimeout(30.0)
            deadlines.watch_current(_Conn(ours))
            assert ours.recv(10) == b"" and call is not None and call.expired
        finally:
            ours.close()
            theirs.close()
