"""``PlainUploadPool`` (shaman_addon.shaman.plain_uploads) against a scripted raw-socket server
on loopback: pipelining, resending after ``Connection: close``, dropped and stale
connections, streamed large bodies and ``abort()``.

Why a hand-driven server instead of the Shaman test server: the behaviour under test is
about *when* bytes arrive and on *which* connection, so the test must decide exactly when
the server reads, answers or hangs up. The test thread plays the server step by step
(accept, read a request, answer, close), and the uploads run in worker threads, so every
step is ordered by blocking socket calls rather than sleeps. Every server socket has a
timeout, so a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import resource
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pytest
import requests

from shaman_addon.shaman.http_answer import Answer
from shaman_addon.shaman.plain_uploads import PlainUploadPool, UploadPipe
from shaman_addon.shaman.transport import ConnectionRegistry, UploadBody, readable_now

IO_TIMEOUT = 5.0  # any single wait in these tests; only reached when something is broken
HOST = "127.0.0.1"

# A socket or file left open is a failure here. ``-W error::ResourceWarning`` alone does
# not catch it: the warning fires in ``__del__``, where pytest reports it as an
# "unraisable exception" warning instead, so that one is made an error too.
pytestmark = [pytest.mark.filterwarnings("error::ResourceWarning"),
              pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")]


# -- the scripted server ------------------------------------------------------------------


@dataclass
class Request:
    """One request as the server received it: the exact bytes, and their parts."""

    raw: bytes
    line: str
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return self.line.split(" ")[1]


@dataclass
class Peer:
    """The server's side of one accepted connection; keeps every request it read."""

    sock: socket.socket
    requests: list[Request] = field(default_factory=list)
    _buf: bytes = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError(f"client closed the connection mid-request ({self._buf!r})")
        self._buf += data

    def read_request(self) -> Request:
        """Read one complete request (head + ``Content-Length`` bytes), no more."""
        while b"\r\n\r\n" not in self._buf:
            self._fill()
        head, _ = self._buf.split(b"\r\n\r\n", 1)
        line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = dict(h.split(": ", 1) for h in header_lines)
        end = len(head) + 4 + int(headers.get("Content-Length", "0"))
        while len(self._buf) < end:
            self._fill()
        raw, self._buf = self._buf[:end], self._buf[end:]
        request = Request(raw, line, headers, raw[len(head) + 4:])
        self.requests.append(request)
        return request

    @property
    def unread(self) -> bytes:
        """Bytes received past the last complete request."""
        return self._buf

    def answer(self, status: int, body: bytes, *, close: bool = False) -> None:
        extra = "Connection: close\r\n" if close else ""
        head = (f"HTTP/1.1 {status} Whatever\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n{extra}\r\n")
        self.sock.sendall(head.encode() + body)

    def close(self) -> None:
        self.sock.close()

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class ScriptedServer:
    """A listening socket on 127.0.0.1:0 that the test drives one call at a time."""

    def __init__(self) -> None:
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(IO_TIMEOUT)
        self.port: int = self.listener.getsockname()[1]
        self.peers: list[Peer] = []

    def accept(self) -> Peer:
        sock, _ = self.listener.accept()
        sock.settimeout(IO_TIMEOUT)
        peer = Peer(sock)
        self.peers.append(peer)
        return peer

    def connection_waiting(self) -> bool:
        """A client connected that the script has not accepted. Checked after the uploads
        returned: any connection they opened completed its handshake before they wrote on
        it, so it is in the backlog by then (no race)."""
        return bool(select.select([self.listener], [], [], 0)[0])

    def close(self) -> None:
        for peer in self.peers:
            peer.close()
        self.listener.close()


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


@pytest.fixture
def registry() -> ConnectionRegistry:
    return ConnectionRegistry()


@pytest.fixture
def pool(server: ScriptedServer, registry: ConnectionRegistry) -> Iterator[PlainUploadPool]:
    """One connection for pipelined bodies, so concurrent small uploads must share it."""
    upload_pool = PlainUploadPool(HOST, server.port, registry, IO_TIMEOUT, connections=1)
    yield upload_pool
    upload_pool.close()


class Uploads:
    """Runs ``pool.send`` in daemon threads, one per upload, while the test plays server.

    Why not a ThreadPoolExecutor: a pool bug that leaves a thread blocked forever (say, a
    gate never released) would then hang pytest at teardown. Here teardown cuts every
    connection from both ends and gives each thread a bounded time to finish."""

    def __init__(self, pool: PlainUploadPool) -> None:
        self.pool = pool
        self.threads: list[threading.Thread] = []

    def start(self, path: str, body: UploadBody | None,
              read_timeout: float = IO_TIMEOUT) -> Future[Answer]:
        future: Future[Answer] = Future()

        def run() -> None:
            try:
                future.set_result(_send(self.pool, path, body, read_timeout))
            except BaseException as exc:
                future.set_exception(exc)

        thread = threading.Thread(target=run, name=f"upload {path}", daemon=True)
        thread.start()
        self.threads.append(thread)
        return future


@pytest.fixture
def uploads(server: ScriptedServer, registry: ConnectionRegistry, pool: PlainUploadPool
            ) -> Iterator[Uploads]:
    """Torn down before the server and the pool (it depends on them): closes both ends
    of every connection first, so threads blocked in ``recv`` wake up, then joins them."""
    runner = Uploads(pool)
    yield runner
    registry.abort()
    server.close()
    for thread in runner.threads:
        thread.join(IO_TIMEOUT)
    stuck = [t.name for t in runner.threads if t.is_alive()]
    assert not stuck, f"upload threads still blocked after teardown: {stuck}"


MakeBody = Callable[..., UploadBody]


@pytest.fixture
def make_body(tmp_path: Path) -> Iterator[MakeBody]:
    """Writes ``content`` to a file and wraps it like the client does (unbuffered file)."""
    opened: list[BinaryIO] = []

    def make(name: str, content: bytes, chunk_size: int = 1 << 20) -> UploadBody:
        path = tmp_path / name.strip("/").replace("/", "-")
        path.write_bytes(content)
        fileobj = open(path, "rb", buffering=0)  # noqa: SIM115  (closed at teardown)
        opened.append(fileobj)
        return UploadBody(fileobj, len(content), path=str(path), chunk_size=chunk_size)

    yield make
    for fileobj in opened:
        fileobj.close()


def _headers(size: int) -> dict[str, str]:
    return {"Content-Type": "application/octet-stream", "Content-Length": str(size)}


def _send(pool: PlainUploadPool, path: str, body: UploadBody | None,
          read_timeout: float = IO_TIMEOUT) -> Answer:
    size = 0 if body is None else len(body)
    return pool.send(path, f"http://{HOST}{path}", _headers(size), body, read_timeout)


def _both_pipelined(server: ScriptedServer, uploads: Uploads, make_body: MakeBody
                    ) -> tuple[Peer, dict[str, Future[Answer]]]:
    """Two uploads started at once; the server accepts one connection and reads both
    complete requests from it before answering anything: that is pipelining."""
    futures = {
        path: uploads.start(path, make_body(path, path.encode() * 10))
        for path in ("/upload/first/10", "/upload/second/20")
    }
    peer = server.accept()
    peer.read_request()
    peer.read_request()
    assert sorted(r.path for r in peer.requests) == sorted(futures)
    for future in futures.values():
        assert not future.done()  # nobody answered yet
    return peer, futures


# -- the tests ------------------------------------------------------------------------------


def test_two_small_uploads_are_pipelined_on_one_connection(
    server: ScriptedServer, uploads: Uploads, make_body: MakeBody,
) -> None:
    """Why: pipelining is the point of the module. Both requests must be on the wire
    before either answer, and each thread must get the answer to ITS request even though
    the answers share one byte stream (a mix-up would mark the wrong file as stored)."""
    peer, futures = _both_pipelined(server, uploads, make_body)
    statuses = {}
    for request, status in zip(peer.requests, (200, 208), strict=True):
        statuses[request.path] = status
        peer.answer(status, f"echo {request.path}".encode())
    for path, future in futures.items():
        answer = future.result(IO_TIMEOUT)
        assert answer.status_code == statuses[path]
        assert answer.content == f"echo {path}".encode()
        assert answer.headers["content-length"] == str(len(answer.content))
    assert len(server.peers) == 1 and not server.connection_waiting()


def test_request_bytes_are_exactly_head_and_file(
    server: ScriptedServer, uploads: Uploads, make_body: MakeBody,
) -> None:
    """Why: the pool writes the request head itself instead of using ``http.client``, so
    the exact bytes must be checked: request line, ``Host`` first with the port, the
    caller's headers in order, a blank line, then the file unchanged. An empty body
    (None) sends the head alone, and reuses the kept-alive connection."""
    content = bytes(range(256)) * 3 + b"\r\n\r\nnot a header\r\n"
    body = make_body("payload.bin", content)
    future = uploads.start("/shaman/files/abc/790", body)
    peer = server.accept()
    request = peer.read_request()
    expected_head = (f"POST /shaman/files/abc/790 HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
                     f"Content-Type: application/octet-stream\r\n"
                     f"Content-Length: {len(content)}\r\n\r\n").encode()
    assert request.raw == expected_head + content
    assert request.body == content
    peer.answer(200, b"")
    assert future.result(IO_TIMEOUT).status_code == 200
    assert body.complete

    future = uploads.start("/empty/0", None)
    request = peer.read_request()
    assert request.raw == (f"POST /empty/0 HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
                           "Content-Type: application/octet-stream\r\n"
                           "Content-Length: 0\r\n\r\n").encode()
    peer.answer(208, b"")
    assert future.result(IO_TIMEOUT).status_code == 208
    assert peer.unread == b""
    assert len(server.peers) == 1 and not server.connection_waiting()


def test_request_behind_a_connection_close_answer_is_sent_again(
    server: ScriptedServer, uploads: Uploads, make_body: MakeBody,
) -> None:
    """Why: a server may answer ``Connection: close`` and drop pipelined requests it has
    not answered (RFC 9112 §9.3.2). Those were never processed, so the pool must resend
    them on a new connection instead of failing the upload."""
    first_peer, futures = _both_pipelined(server, uploads, make_body)
    answered, dropped = first_peer.requests
    first_peer.answer(200, f"echo {answered.path}".encode(), close=True)
    first_peer.close()

    second_peer = server.accept()
    resent = second_peer.read_request()
    assert resent.raw == dropped.raw
    second_peer.answer(200, f"echo {resent.path}".encode())

    first = futures[answered.path].result(IO_TIMEOUT)
    second = futures[dropped.path].result(IO_TIMEOUT)
    assert (first.status_code, first.content) == (200, f"echo {answered.path}".encode())
    assert (second.status_code, second.content) == (200, f"echo {dropped.path}".encode())
    assert len(server.peers) == 2 and not server.connection_waiting()
    assert second_peer.unread == b""


@pytest.mark.parametrize("hang_up", [Peer.close, Peer.reset], ids=["fin", "rst"])
def test_dropped_connection_fails_every_waiting_upload_then_recovers(
    server: ScriptedServer, uploads: Uploads,
    make_body: MakeBody, hang_up: Callable[[Peer], None],
) -> None:
    """Why: when a connection dies with requests read but unanswered, the server may have
    stored them or not, so each caller must get the ``requests`` error the session path
    would raise (the client then asks for the file's status), not hang and not get
    another request's answer. The dead connection must not poison later uploads."""
    peer, futures = _both_pipelined(server, uploads, make_body)
    hang_up(peer)
    for future in futures.values():
        with pytest.raises(requests.exceptions.ConnectionError):
            future.result(IO_TIMEOUT)

    future = uploads.start("/after/1", make_body("after", b"x"))
    new_peer = server.accept()
    assert new_peer.read_request().path == "/after/1"
    new_peer.answer(200, b"fine")
    assert future.result(IO_TIMEOUT).content == b"fine"
    assert len(server.peers) == 2


def test_idle_connection_closed_by_the_server_is_replaced(
    server: ScriptedServer, uploads: Uploads, pool: PlainUploadPool, make_body: MakeBody,
) -> None:
    """Why: servers close idle keep-alive connections without saying so beforehand.
    Writing the next upload on such a connection would fail it for nothing; the pool
    must see the close (the socket turns readable) and open a new connection."""
    future = uploads.start("/one/1", make_body("one", b"1"))
    first_peer = server.accept()
    first_peer.read_request()
    first_peer.answer(200, b"")  # keep-alive: no Connection: close
    assert future.result(IO_TIMEOUT).status_code == 200
    client_sock = pool._pipes[0].conn.sock  # peeked at only to wait for the FIN
    first_peer.close()
    assert select.select([client_sock], [], [], IO_TIMEOUT)[0], "FIN never reached the client"

    future = uploads.start("/two/2", make_body("two", b"22"))
    second_peer = server.accept()
    assert second_peer.read_request().body == b"22"
    second_peer.answer(201, b"")
    assert future.result(IO_TIMEOUT).status_code == 201
    assert len(server.peers) == 2
    assert client_sock.fileno() == -1  # the stale connection was closed, not leaked


def test_body_larger_than_a_chunk_streams_on_its_own_connection(
    server: ScriptedServer, uploads: Uploads, make_body: MakeBody,
) -> None:
    """Why: a large body is sent in chunks and may be cut short by an early answer, which
    leaves the connection unusable; pipelining it would put other uploads at risk and
    queue them behind it. While a small upload waits on the shared connection, the large
    one must open another connection and arrive whole there."""
    small = uploads.start("/small/1", make_body("small", b"s", chunk_size=1024))
    shared = server.accept()
    shared.read_request()

    content = bytes(i % 251 for i in range(5000))
    large_body = make_body("large", content, chunk_size=1024)
    large = uploads.start("/large/5000", large_body)
    own = server.accept()
    request = own.read_request()
    assert request.path == "/large/5000" and request.body == content
    own.answer(200, b"large")
    assert large.result(IO_TIMEOUT).content == b"large"
    assert large_body.complete

    shared.answer(200, b"small")
    assert small.result(IO_TIMEOUT).content == b"small"
    assert [r.path for r in shared.requests] == ["/small/1"] and shared.unread == b""
    assert own.unread == b""
    assert len(server.peers) == 2 and not server.connection_waiting()


def test_abort_interrupts_uploads_waiting_for_an_answer(
    server: ScriptedServer, uploads: Uploads,
    make_body: MakeBody, registry: ConnectionRegistry,
) -> None:
    """Why: Cancel in Blender calls ``ConnectionRegistry.abort()``; the pool's sockets
    must be registered so that a thread blocked reading an answer (and the one queued
    behind it) returns at once, not after the 30 s read timeout."""
    started = time.monotonic()
    futures = [
        uploads.start(path, make_body(path, b"data"), 30.0)
        for path in ("/wait/1", "/queued/2")
    ]
    peer = server.accept()
    peer.read_request()
    peer.read_request()  # both written: one thread reads, the other waits for its turn
    assert registry.abort() == 1
    for future in futures:
        with pytest.raises(requests.exceptions.ConnectionError) as info:
            future.result(IO_TIMEOUT)
        assert isinstance(info.value.__cause__, (OSError, http.client.HTTPException))
    assert time.monotonic() - started < 10.0  # far below the 30 s read timeout


def test_bytes_nobody_asked_for_are_never_taken_as_the_next_answer(
    server: ScriptedServer, uploads: Uploads, make_body: MakeBody,
) -> None:
    """Why: a server that sends a stray second answer (or junk) after an answer would
    otherwise hand that stale answer to the next upload on the connection, which would
    then count a file as stored that the server never received. The connection must be
    dropped instead and the next upload sent on a fresh one."""
    future = uploads.start("/one/1", make_body("one", b"1"))
    first_peer = server.accept()
    first_peer.read_request()
    stray = b"HTTP/1.1 208 Stale\r\nContent-Length: 5\r\n\r\nstale"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    first_peer.sock.sendall(head + stray)  # one piece: the reader gets both at once
    assert future.result(IO_TIMEOUT).status_code == 200

    future = uploads.start("/two/2", make_body("two", b"22"))
    second_peer = server.accept()
    assert second_peer.read_request().body == b"22"
    second_peer.answer(200, b"fresh")
    answer = future.result(IO_TIMEOUT)
    assert (answer.status_code, answer.content) == (200, b"fresh")
    assert first_peer.unread == b""  # nothing of the second upload went the old way


def test_readable_now_takes_descriptors_above_1023() -> None:
    """Why: ``select.select`` refuses descriptor numbers of 1024 or more, which a long
    Blender session with many files open reaches; the idle and early-answer checks must
    still work there."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    high = 1500
    if soft <= high:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    a, b = socket.socketpair()
    try:
        fd = os.dup2(a.fileno(), high)
        high_sock = socket.socket(fileno=fd)
        try:
            assert high_sock.fileno() >= 1024
            assert readable_now(high_sock) is False
            b.sendall(b"x")
            assert readable_now(high_sock) is True
        finally:
            high_sock.close()
    finally:
        a.close()
        b.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_one_thread_pipe_writes_ahead_and_reads_in_order(
    server: ScriptedServer, pool: PlainUploadPool, make_body: MakeBody,
) -> None:
    """Why: the pipeline's fast lane writes several uploads before it reads any answer,
    from one thread. The server must see them back to back on one connection, and the
    answers must come back in the order written; after a 'Connection: close' answer the
    pipe starts a new connection for what comes next."""
    pipe = UploadPipe(pool, f"http://{HOST}/", IO_TIMEOUT)
    bodies = [make_body(f"f{i}", bytes([65 + i]) * (i + 1)) for i in range(3)]
    generations = [pipe.write(f"/files/{i}", _headers(len(body)), body)
                   for i, body in enumerate(bodies)]
    assert pipe.waiting == 3 and len(set(generations)) == 1
    peer = server.accept()
    got = [peer.read_request() for _ in range(3)]
    assert [r.body for r in got] == [b"A", b"BB", b"CCC"]
    for i, status in enumerate((200, 425, 208)):
        peer.answer(status, f"answer {i}".encode(), close=(i == 2))
    answers = [pipe.read(g) for g in generations]
    assert [(a.status_code, a.content) for a in answers] == [
        (200, b"answer 0"), (425, b"answer 1"), (208, b"answer 2")]
    assert pipe.waiting == 0

    generation = pipe.write("/files/next", _headers(1), make_body("next", b"n"))
    assert generation != generations[0]
    fresh = server.accept()  # the closed connection is not used again
    assert fresh.read_request().body == b"n"
    fresh.answer(200, b"")
    assert pipe.read(generation).status_code == 200
    pipe.reset()


def test_one_thread_pipe_never_reads_an_answer_from_a_newer_connection(
    server: ScriptedServer, pool: PlainUploadPool, make_body: MakeBody,
) -> None:
    """Why: when a write fails (the server closed while requests were written ahead)
    the pipe starts a new connection; requests written on the old one must then fail as
    unanswered, never take the answer meant for a request on the new one (that would
    count a file as stored that the server never got)."""
    pipe = UploadPipe(pool, f"http://{HOST}/", IO_TIMEOUT)
    old = pipe.write("/files/old", _headers(1), make_body("old", b"o"))
    first = server.accept()
    first.read_request()
    pipe.reset()  # what a failed write does
    new = pipe.write("/files/new", _headers(1), make_body("new", b"n"))
    second = server.accept()
    second.read_request()
    second.answer(200, b"for new")
    with pytest.raises(ConnectionResetError):
        pipe.read(old)
    assert pipe.read(new).content == b"for new"
    pipe.reset()


def test_two_connections_when_asked_for(
    server: ScriptedServer, registry: ConnectionRegistry, make_body: MakeBody,
) -> None:
    """Why: ``--connections 2`` is for servers that handle connections in parallel (a
    multi-core Manager). With two allowed, two uploads at once each get a connection of
    their own instead of sharing one."""
    pool = PlainUploadPool(HOST, server.port, registry, IO_TIMEOUT, connections=2)
    runner = Uploads(pool)
    try:
        futures = [runner.start(f"/two/{i}", make_body(f"two{i}", b"x" * (i + 1)))
                   for i in range(2)]
        peers = [server.accept(), server.accept()]
        for peer in peers:
            request = peer.read_request()
            peer.answer(200, request.path.encode())
        answers = sorted(f.result(IO_TIMEOUT).content for f in futures)
        assert answers == [b"/two/0", b"/two/1"]
        assert [len(p.requests) for p in peers] == [1, 1]
    finally:
        registry.abort()
        for thread in runner.threads:
            thread.join(IO_TIMEOUT)
        pool.close()


def test_fast_lane_requests_carry_the_same_headers_as_ordinary_uploads(
    server: ScriptedServer, tmp_path: Path,
) -> None:
    """Why: the fast lane and the ordinary upload path build their requests apart; a
    Manager (and its logs) must see the same request either way, User-Agent included."""
    from shaman_addon.shaman.client import ShamanClient

    path = tmp_path / "tex.png"
    path.write_bytes(b"pixels")
    sha = hashlib.sha256(b"pixels").hexdigest()
    with ShamanClient(f"http://{HOST}:{server.port}") as client:
        piped = client.upload_pipe()
        assert piped is not None
        generation = piped.start(sha, 6, path, original_filename="tex.png")
        lane = server.accept().read_request()
        piped.reset()
        done: Future[object] = Future()
        thread = threading.Thread(target=lambda: done.set_result(client.upload(sha, 6, path)))
        thread.start()
        peer = server.accept()
        ordinary = peer.read_request()
        peer.answer(200, b"")
        thread.join(IO_TIMEOUT)
        assert done.result(IO_TIMEOUT) is not None and generation == 0
    assert lane.line == ordinary.line == f"POST /api/v3/shaman/files/{sha}/6 HTTP/1.1"
    assert lane.headers == ordinary.headers
    assert lane.headers["User-Agent"] and lane.body == ordinary.body == b"pixels"
