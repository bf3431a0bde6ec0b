"""A network link with a bandwidth and a delay, as a TCP proxy on loopback, for the benchmark.

    python benchmarks/shaped_link.py --target 127.0.0.1:PORT --profile lan|remote
                                     [--listen-port N] [--rtt-ms MS] [--mbit MBIT]

prints ``listening on 127.0.0.1:PORT`` and forwards every connection to the target until
SIGTERM/SIGINT; ``ShapedLink(...).start()`` / ``stop()`` do the same on a thread.

Each direction is ONE link shared by every connection, as a real link is: a chunk that
arrives at ``t`` leaves at ``max(t, previous departure) + len / rate`` (first in, first
out across connections) and is delivered one-way delay (RTT / 2) later. What is read and
not yet delivered is bounded (``Profile.buffer_bytes``, about a bandwidth-delay product
plus a margin): beyond it the proxy stops reading, so TCP backpressure holds the sender
back. A connection's first bytes leave one RTT after it was accepted (the handshake);
FIN and RST travel behind the data sent before them. Not modelled: loss, jitter, TCP
windows and slow start. More in benchmarks/README.md.

``Link`` holds the scheduling, pure, on an injected clock. Timers run on ``select()``
(microseconds; ``epoll`` rounds up to whole milliseconds, 4x ``lan``'s one-way delay).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"
MARGIN = 256 * 1024  # buffer beyond the bandwidth-delay product
SOCK_BUFFER = 128 * 1024  # SO_RCVBUF / SO_SNDBUF of the proxy's sockets (Linux doubles it)
MAX_EARLY = 0.0005  # most a timer is set early (the rest of the wait is slept)
EOF, RESET = "eof", "reset"  # markers that travel the link like data, with no size


@dataclass(frozen=True)
class Profile:
    """A link: round-trip time and bandwidth (bits per second), the same each way."""

    name: str
    rtt_s: float
    rate_bps: float

    @property
    def one_way_s(self) -> float:
        return self.rtt_s / 2

    @property
    def bytes_per_s(self) -> float:
        return self.rate_bps / 8

    @property
    def buffer_bytes(self) -> int:
        """Most bytes held per direction: the bandwidth-delay product plus a margin."""
        return int(self.bytes_per_s * self.rtt_s) + MARGIN

    @property
    def quantum(self) -> int:
        """Bytes carried as one piece (store and forward): 64 KiB, or 0.5 ms of a faster
        link. Smaller pieces only deliver a big write's first bytes sooner (its last
        byte leaves at the same time) and cost more CPU per byte."""
        return max(64 * 1024, int(self.bytes_per_s * 0.0005))

    def floor_s(self, payload_bytes: int) -> float:
        """The link floor: the payload at the full rate, plus one round trip."""
        return payload_bytes / self.bytes_per_s + self.rtt_s


PROFILES = {
    "lan": Profile("lan", 0.0005, 1e9),
    "remote": Profile("remote", 0.030, 100e6),
}


class Link:
    """One direction of a link: when bytes that enter it now reach the far end.

    ``clock`` gives the current time in seconds. ``held`` counts bytes sent and not yet
    ``delivered``; ``full`` / ``has_room`` say when a sender should stop and resume.
    """

    def __init__(self, rate_bps: float, delay_s: float, clock: Callable[[], float],
                 buffer_bytes: int) -> None:
        if rate_bps <= 0 or delay_s < 0 or buffer_bytes <= 0:
            raise ValueError("a link needs a positive rate and buffer and a delay >= 0")
        self.bytes_per_s = rate_bps / 8
        self.delay_s = delay_s
        self.clock = clock
        self.buffer_bytes = buffer_bytes
        self.last_departure = float("-inf")
        self.held = 0
        self.sent_bytes = 0
        self.waiters: list[_End] = []  # senders paused until the buffer has room

    def send(self, nbytes: int) -> float:
        """``nbytes`` enter the link now (0: a marker, a FIN or RST); returns the time
        they are delivered at the far end, which never decreases from call to call."""
        departure = max(self.clock(), self.last_departure) + nbytes / self.bytes_per_s
        self.last_departure = departure
        self.held += nbytes
        self.sent_bytes += nbytes
        return departure + self.delay_s

    def delivered(self, nbytes: int) -> None:
        self.held -= nbytes

    @property
    def full(self) -> bool:
        return self.held >= self.buffer_bytes

    @property
    def has_room(self) -> bool:
        return self.held <= self.buffer_bytes * 3 // 4


class _End(asyncio.Protocol):
    """One socket of a proxied connection. What it reads crosses ``link`` to ``peer``'s
    socket; ``queue`` holds it meanwhile, in order, each piece with its delivery time."""

    def __init__(self, proxy: ShapedLink, link: Link, accepted: bool) -> None:
        self.proxy = proxy
        self.link = link
        self.accepted = accepted  # the client's socket (else: ours to the target)
        self.peer: _End = self
        self.transport: asyncio.Transport | None = None
        self.queue: collections.deque[tuple[float, memoryview | str]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.pauses: set[str] = set()
        self.read_eof = self.wrote_eof = self.closed = False

    # -- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.proxy.ends.add(self)
        if self.accepted:  # read nothing before the target is connected and a RTT is over
            self.pause("connect")
            self.peer = _End(self.proxy, self.proxy.down, accepted=False)
            self.peer.peer = self
            self.proxy.loop.create_task(self.proxy.connect(self))

    def data_received(self, data: bytes) -> None:
        if self.peer.closed:
            return  # nowhere to go: the peer's reset is on its way to this socket
        view, step = memoryview(data), self.proxy.profile.quantum
        for off in range(0, len(view), step):
            self.enqueue(view[off:off + step])
        if self.link.full:
            self.pause("link")
            self.link.waiters.append(self)

    def eof_received(self) -> bool:
        self.read_eof = True
        self.enqueue(EOF)
        self.maybe_close()
        return True  # keep our write side open (half-close)

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed, self.closed = self.closed, True
        self.proxy.ends.discard(self)
        if exc is not None and not was_closed:
            # Reset or failed: the peer gets a reset behind what we read from this socket;
            # what it sent this way can no longer arrive.
            self.enqueue(RESET)
            self.peer.drop_queue()
            self.peer.resume("peer")

    def pause_writing(self) -> None:  # our socket's write buffer is full: stop its source
        self.peer.pause("peer")

    def resume_writing(self) -> None:
        self.peer.resume("peer")

    # -- carrying data
    def enqueue(self, payload: memoryview | str) -> None:
        at = self.link.send(len(payload) if isinstance(payload, memoryview) else 0)
        self.queue.append((at, payload))
        if self.timer is None:
            self.timer = self.proxy.call_at(at, self.deliver)

    def deliver(self) -> None:
        """Write to the peer whatever has reached the far end of the link by now."""
        self.timer = None
        queue = self.queue
        now = self.proxy.woken(queue[0][0]) if queue else 0.0
        peer, freed = self.peer, 0
        while queue and queue[0][0] <= now:
            payload = queue.popleft()[1]
            if isinstance(payload, memoryview):
                freed += len(payload)
                if not peer.closed and peer.transport is not None:
                    peer.transport.write(payload)
            elif payload == EOF:
                peer.shut_write()
            else:
                peer.reset()
        if queue:
            self.timer = self.proxy.call_at(queue[0][0], self.deliver)
        self.release(freed)

    def release(self, nbytes: int) -> None:
        link = self.link
        link.delivered(nbytes)
        if link.waiters and link.has_room:
            waiters, link.waiters = link.waiters, []
            for end in waiters:
                end.resume("link")

    def drop_queue(self) -> None:
        freed = sum(len(p) for _at, p in self.queue if isinstance(p, memoryview))
        self.queue.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.release(freed)

    # -- the socket
    def pause(self, why: str) -> None:
        if not self.pauses and self.can_read():
            assert self.transport is not None
            self.transport.pause_reading()
        self.pauses.add(why)

    def resume(self, why: str) -> None:
        if why not in self.pauses:
            return
        self.pauses.discard(why)
        if not self.pauses and self.can_read():
            assert self.transport is not None
            self.transport.resume_reading()

    def can_read(self) -> bool:
        # asyncio re-adds a reader on resume even after EOF (and reports the EOF again)
        return self.transport is not None and not self.read_eof and not self.closed

    def shut_write(self) -> None:
        if self.closed or self.wrote_eof or self.transport is None:
            return
        self.wrote_eof = True
        self.transport.write_eof()
        self.maybe_close()

    def maybe_close(self) -> None:
        if self.read_eof and self.wrote_eof and not self.closed and self.transport:
            self.closed = True
            self.transport.close()  # after its write buffer is flushed

    def reset(self) -> None:
        """Abort the socket with a RST, as the far end's reset arrives."""
        if self.closed:
            return
        self.closed = True
        if self.transport is None:
            return
        sock = self.transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop on ``select()``: timeouts in microseconds, not epoll's milliseconds."""
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


def _small_buffers(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCK_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCK_BUFFER)


class ShapedLink:
    """The proxy: listens on 127.0.0.1, forwards each connection to ``target`` over the
    two shared links of ``profile``. ``start()``/``stop()`` run it on its own thread;
    ``open()``/``shutdown()`` inside an event loop the caller runs."""

    def __init__(self, target: tuple[str, int], profile: Profile, listen_port: int = 0) -> None:
        if target[0] not in (LOOPBACK, "localhost"):
            raise ValueError(f"the target must be on loopback, not {target[0]!r}")
        self.target = target
        self.profile = profile
        self.listen_port = listen_port
        self.port = 0
        self.connections = 0
        self.ends: set[_End] = set()
        self.early_s = 0.0  # how early timers are set, from the lateness of wake-ups
        self.loop: asyncio.AbstractEventLoop  # these three are set by open()
        self.up: Link
        self.down: Link
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._cpu_s: float | None = None

    # -- inside the event loop
    async def open(self) -> int:
        self.loop = asyncio.get_running_loop()
        p = self.profile
        self.up = Link(p.rate_bps, p.one_way_s, self.loop.time, p.buffer_bytes)
        self.down = Link(p.rate_bps, p.one_way_s, self.loop.time, p.buffer_bytes)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _small_buffers(sock)  # accepted sockets inherit them
        sock.bind((LOOPBACK, self.listen_port))
        self._server = await self.loop.create_server(self._accepted, sock=sock, backlog=128)
        self.port = sock.getsockname()[1]
        return self.port

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """A timer for ``when``, asked for as early as wake-ups have lately been late."""
        return self.loop.call_at(when - self.early_s, callback)

    def woken(self, when: float) -> float:
        """A timer for ``when`` fired: learn how late, sleep what is left; returns now.
        (Wake-ups here are 0.1-0.3 ms late, ``lan``'s whole one-way delay: waking early
        and sleeping the rest keeps deliveries close to on time and never early.)"""
        now = time.monotonic()
        late = now - (when - self.early_s)
        self.early_s = min(MAX_EARLY, max(0.0, self.early_s + (late - self.early_s) / 8))
        if now < when <= now + MAX_EARLY:
            time.sleep(when - now)  # a short sleep is late by tens of microseconds only
            now = time.monotonic()
        return now

    def _accepted(self) -> _End:
        self.connections += 1
        return _End(self, self.up, accepted=True)

    async def connect(self, client: _End) -> None:
        accepted_at = self.loop.time()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        _small_buffers(sock)
        sock.setblocking(False)
        try:
            await self.loop.sock_connect(sock, self.target)
            await self.loop.create_connection(lambda: client.peer, sock=sock)
        except OSError:
            sock.close()
            client.reset()  # as a refused connection looks to the client
            return
        if client.closed:
            client.peer.reset()
            return
        self.loop.call_at(accepted_at + self.profile.rtt_s, client.resume, "connect")

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for end in list(self.ends):
            if end.transport is not None:
                end.transport.abort()

    # -- on a thread of its own
    def start(self) -> int:
        """Run on a new thread; returns the port it listens on."""
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = new_event_loop()
            asyncio.set_event_loop(loop)
            t0 = time.thread_time()
            try:
                loop.run_until_complete(self.open())
            except BaseException as exc:
                failed.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            self.shutdown()
            loop.run_until_complete(asyncio.sleep(0.01))  # let aborts and closes finish
            loop.close()
            self._cpu_s = time.thread_time() - t0

        self._thread = threading.Thread(target=run, name="shaped-link", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            raise failed[0]
        return self.port

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            thread.join()

    def cpu_s(self) -> float | None:
        """CPU seconds of the proxy's thread so far (or in all, once stopped)."""
        if self._thread is not None and self._thread.ident is not None:
            with contextlib.suppress(OSError):
                return time.clock_gettime(time.pthread_getcpuclockid(self._thread.ident))
        return self._cpu_s


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", required=True, help="127.0.0.1:PORT of the server")
    p.add_argument("--profile", choices=sorted(PROFILES), default="lan")
    p.add_argument("--listen-port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--rtt-ms", type=float, default=None, help="override the profile's RTT")
    p.add_argument("--mbit", type=float, default=None, help="override its rate, Mbit/s")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host, _, port = args.target.rpartition(":")
    base = PROFILES[args.profile]
    profile = Profile(base.name,
                      base.rtt_s if args.rtt_ms is None else args.rtt_ms / 1e3,
                      base.rate_bps if args.mbit is None else args.mbit * 1e6)
    proxy = ShapedLink((host, int(port)), profile, listen_port=args.listen_port)
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # the proxy's thread inherits it
    print(f"listening on {LOOPBACK}:{proxy.start()}", flush=True)
    signal.sigwait(stop_signals)
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
