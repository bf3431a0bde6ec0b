"""The benchmark's shaped link (benchmarks/shaped_link.py): the scheduling on a fake
clock, and the proxy over loopback for data integrity, order, half-close and resets.
No timing is asserted: a loaded machine only makes these slower."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import select
import socket
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import shaped_link
from shaped_link import Link, Profile, ShapedLink

FAST = Profile("test", rtt_s=0.002, rate_bps=2e9)
TIMEOUT = 30.0  # a socket that waits this long is a hang, not a slow machine


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- the math


def test_a_chunk_is_serialised_then_delayed() -> None:
    clock = Clock()
    link = Link(8000, 0.1, clock, buffer_bytes=10_000)  # 1,000 bytes per second
    assert link.send(100) == pytest.approx(100.0 + 0.1 + 0.1)


def test_back_to_back_chunks_leave_at_the_link_rate() -> None:
    clock = Clock()
    link = Link(8000, 0.05, clock, buffer_bytes=10_000)
    times = [link.send(250) for _ in range(4)]
    assert times == pytest.approx([100.25 + 0.05, 100.5 + 0.05, 100.75 + 0.05, 101.0 + 0.05])
    assert link.last_departure == pytest.approx(101.0)


def test_an_idle_link_saves_no_credit() -> None:
    clock = Clock()
    link = Link(8000, 0.0, clock, buffer_bytes=10_000)
    link.send(100)
    clock.now += 60
    assert link.send(100) == pytest.approx(160.1)  # not earlier, although idle for long


def test_a_chunk_arriving_mid_transmission_queues_behind() -> None:
    clock = Clock()
    link = Link(8000, 0.01, clock, buffer_bytes=10_000)
    link.send(1000)  # leaves at 101.0
    clock.now = 100.4
    assert link.send(100) == pytest.approx(101.1 + 0.01)


def test_a_marker_has_no_size_but_waits_its_turn() -> None:
    clock = Clock()
    link = Link(8000, 0.02, clock, buffer_bytes=10_000)
    data_at = link.send(500)
    fin_at = link.send(0)
    assert fin_at == pytest.approx(data_at) and fin_at >= data_at


def test_connections_share_one_link() -> None:
    """Two senders on one link: each gets its share, never more than the rate together."""
    clock = Clock()
    link = Link(8000, 0.0, clock, buffer_bytes=10_000)
    arrivals = []
    for _ in range(10):
        arrivals.append(link.send(100))  # connection A
        arrivals.append(link.send(100))  # connection B
    assert arrivals == sorted(arrivals)
    assert arrivals[-1] == pytest.approx(100.0 + 2000 / 1000)


def test_held_bytes_say_when_to_stop_and_resume() -> None:
    clock = Clock()
    link = Link(8000, 0.0, clock, buffer_bytes=1000)
    link.send(800)
    assert not link.full and not link.has_room  # above 3/4, below the buffer
    link.send(200)
    assert link.full
    link.delivered(300)
    assert not link.full and link.has_room
    assert link.held == 700 and link.sent_bytes == 1000


def test_delivery_times_never_decrease() -> None:
    rng = random.Random(7)
    clock = Clock()
    link = Link(1e6, 0.003, clock, buffer_bytes=1 << 20)
    last = float("-inf")
    for _ in range(2000):
        clock.now += rng.choice([0.0, 0.0, rng.random() * 0.01])
        at = link.send(rng.choice([0, 1, 1500, 65536]))
        assert at >= last and at >= clock.now + 0.003
        last = at


def test_profiles() -> None:
    lan, remote = shaped_link.PROFILES["lan"], shaped_link.PROFILES["remote"]
    assert lan.one_way_s == pytest.approx(0.00025) and lan.bytes_per_s == pytest.approx(125e6)
    assert remote.one_way_s == pytest.approx(0.015)
    assert remote.floor_s(12_500_000) == pytest.approx(1.0 + 0.030)
    assert remote.buffer_bytes == 375_000 + shaped_link.MARGIN
    with pytest.raises(ValueError):
        Link(0, 0.1, Clock(), 100)


# --------------------------------------------------------------------------- the proxy


@contextlib.contextmanager
def served(handler: Callable[[socket.socket], None]) -> Iterator[tuple[int, ShapedLink]]:
    """A server on loopback running ``handler`` per connection, behind a shaped link."""
    listener = socket.create_server((shaped_link.LOOPBACK, 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    def one(conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(TIMEOUT)
                handler(conn)
        except BaseException as exc:
            errors.append(exc)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=one, args=(conn,), daemon=True)
            threads.append(t)
            t.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    proxy = ShapedLink((shaped_link.LOOPBACK, listener.getsockname()[1]), FAST)
    port = proxy.start()
    try:
        yield port, proxy
        # Every connection the proxy took reaches the server; wait for each handler.
        waited = 0.0
        while len(threads) < proxy.connections and waited < TIMEOUT:
            threading.Event().wait(0.01)
            waited += 0.01
        for t in list(threads):
            t.join(TIMEOUT)
    finally:
        stop.set()
        proxy.stop()
        listener.close()
        acceptor.join(TIMEOUT)
    if errors:
        raise errors[0]


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((shaped_link.LOOPBACK, port), timeout=TIMEOUT)
    return sock


def recv_all(sock: socket.socket) -> bytes:
    """Everything until the other side's FIN."""
    out = bytearray()
    while chunk := sock.recv(1 << 16):
        out += chunk
    return bytes(out)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(min(1 << 16, n - len(out)))
        if not chunk:
            raise EOFError(f"{len(out)} of {n} bytes")
        out += chunk
    return bytes(out)


def digest_then_reverse(conn: socket.socket) -> None:
    """Read to the client's FIN, answer with a digest and the bytes reversed, close."""
    data = recv_all(conn)
    conn.sendall(hashlib.sha256(data).digest() + data[::-1])


def test_bytes_cross_unchanged_both_ways_with_half_close() -> None:
    payload = os.urandom(3_000_000)
    with served(digest_then_reverse) as (port, proxy), connect(port) as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(payload),
                                                  sock.shutdown(socket.SHUT_WR)))
        sender.start()
        answer = recv_all(sock)  # the server's FIN came through: it closed after answering
        sender.join()
    assert answer[:32] == hashlib.sha256(payload).digest()
    assert answer[32:] == payload[::-1]
    assert proxy.up.sent_bytes == len(payload) and proxy.down.sent_bytes == len(answer)
    assert proxy.up.held == 0 and proxy.down.held == 0


def test_half_closed_client_still_reads_a_long_answer() -> None:
    """The client's FIN first, then the server talks for a while and closes."""
    def talk_after_fin(conn: socket.socket) -> None:
        assert recv_all(conn) == b"question"
        for i in range(2000):
            conn.sendall(struct.pack(">I", i) + bytes(1000))

    with served(talk_after_fin) as (port, _proxy), connect(port) as sock:
        sock.sendall(b"question")
        sock.shutdown(socket.SHUT_WR)
        answer = recv_all(sock)
    assert len(answer) == 2000 * 1004
    assert [struct.unpack(">I", answer[i:i + 4])[0] for i in range(0, len(answer), 1004)] \
        == list(range(2000))


def echo(conn: socket.socket) -> None:
    while chunk := conn.recv(1 << 16):
        conn.sendall(chunk)


def test_several_connections_at_once_keep_their_own_bytes_in_order() -> None:
    results: dict[int, bool] = {}

    def client(port: int, n: int) -> None:
        payload = random.Random(n).randbytes(200_000 + 7919 * n)
        with connect(port) as sock:
            t = threading.Thread(target=lambda: (sock.sendall(payload),
                                                 sock.shutdown(socket.SHUT_WR)))
            t.start()
            back = recv_all(sock)
            t.join()
        results[n] = back == payload

    with served(echo) as (port, proxy):
        clients = [threading.Thread(target=client, args=(port, n)) for n in range(8)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(TIMEOUT)
    assert results == {n: True for n in range(8)}
    assert proxy.connections == 8


def test_many_small_exchanges_on_one_connection() -> None:
    """Request/answer ping-pong: each small piece is delivered, none waits for more."""
    with served(echo) as (port, _proxy), connect(port) as sock:
        for i in range(200):
            msg = f"request {i}\n".encode()
            sock.sendall(msg)
            assert recv_exactly(sock, len(msg)) == msg
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b""


def abort(sock: socket.socket) -> None:
    """Close with a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_reset_reaches_the_server_after_its_data() -> None:
    seen: list[object] = []
    done = threading.Event()

    def read_until_reset(conn: socket.socket) -> None:
        got = bytearray()
        try:
            while chunk := conn.recv(1 << 16):
                got += chunk
            seen.append("fin")
        except ConnectionResetError:
            seen.append("reset")
        seen.append(bytes(got))
        done.set()

    with served(read_until_reset) as (port, _proxy):
        sock = connect(port)
        sock.sendall(b"x" * 1000)
        abort(sock)
        done.wait(TIMEOUT)
    assert seen[0] == "reset"
    assert seen[1] in (b"x" * 1000, b"")  # a RST may overtake data the server had not read


def test_a_server_reset_reaches_the_client() -> None:
    def reset_at_once(conn: socket.socket) -> None:
        recv_exactly(conn, 5)
        conn.sendall(b"partial")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with served(reset_at_once) as (port, _proxy), connect(port) as sock:
        sock.sendall(b"hello")
        got = bytearray()
        with pytest.raises(ConnectionResetError):
            while chunk := sock.recv(1 << 16):
                got += chunk
    assert bytes(got) in (b"partial", b"")


def test_a_refused_target_closes_the_client() -> None:
    spare = socket.create_server((shaped_link.LOOPBACK, 0))
    port = spare.getsockname()[1]
    spare.close()  # nothing listens there now
    proxy = ShapedLink((shaped_link.LOOPBACK, port), FAST)
    try:
        with contextlib.suppress(ConnectionResetError), connect(proxy.start()) as sock:
            assert sock.recv(10) == b""  # a FIN, or the reset suppressed above
    finally:
        proxy.stop()


def test_a_fast_sender_is_held_back_not_swallowed() -> None:
    """While the server reads nothing, the proxy holds at most about its buffer."""
    most = [0]
    real_send = Link.send

    def counting_send(self: Link, nbytes: int) -> float:
        at = real_send(self, nbytes)
        most[0] = max(most[0], self.held)
        return at

    release = threading.Event()
    payload = os.urandom(20_000_000)

    def slow_reader(conn: socket.socket) -> None:
        release.wait(TIMEOUT)
        assert recv_all(conn) == payload

    with served(slow_reader) as (port, proxy), connect(port) as sock:
        Link.send = counting_send  # type: ignore[method-assign]
        try:
            sock.setblocking(False)
            sent = 0
            while sent < len(payload):
                try:
                    sent += sock.send(payload[sent:sent + (1 << 20)])
                except BlockingIOError:
                    # Stuck: every buffer on the way is full (the proxy stopped reading).
                    if not select.select([], [sock], [], 0.5)[1]:
                        break
            assert sent < len(payload)
            release.set()
            sock.setblocking(True)
            sock.settimeout(TIMEOUT)
            sock.sendall(payload[sent:])
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == b""
        finally:
            Link.send = real_send  # type: ignore[method-assign]
    bound = FAST.buffer_bytes + 256 * 1024 + FAST.quantum  # one read may overshoot
    assert 0 < most[0] <= bound
    assert proxy.up.held == 0
