"""``PipelinedConnection`` (shaman_addon.shaman.pipelined) against a scripted raw-socket
server on loopback: pipelining, the exact request bytes (the same as an ordinary upload's),
``Connection: close``, dropped, idle-closed and stale connections, high descriptors and
``abort()``.

Why a hand-driven server instead of the Shaman test server: the behaviour under test is
about *when* bytes arrive and on *which* connection, so the test must decide exactly when
the server reads, answers or hangs up. The connection is driven by one thread, as in the
pipeline, and its small writes land in the socket buffers at once, so the test thread can
write, then play server (accept, read, answer, close), then read: every step is ordered by
blocking socket calls rather than sleeps. Every server socket has a timeout, so a
regression fails the test instead of hanging it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import resource
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from scripted_server import HOST, IO_TIMEOUT, Peer, ScriptedServer

from shaman_addon.errors import Cancelled, ExchangeFailed, LocalFileChanged, RequestNotRead
from shaman_addon.shaman.client import ClientSettings, ShamanClient, UploadResult
from shaman_addon.shaman.messages import UploadRequest
from shaman_addon.shaman.pipelined import PipelinedConnection
from shaman_addon.shaman.sockets import ConnectionRegistry, readable_now

# A socket or file left open is a failure here. ``-W error::ResourceWarning`` alone does
# not catch it: the warning fires in ``__del__``, where pytest reports it as an
# "unraisable exception" warning instead, so that one is made an error too.
pytestmark = [pytest.mark.filterwarnings("error::ResourceWarning"),
              pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")]


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


@pytest.fixture
def registry() -> ConnectionRegistry:
    return ConnectionRegistry()


def _lane(server: ScriptedServer, registry: ConnectionRegistry,
          read_timeout: float = IO_TIMEOUT) -> PipelinedConnection:
    return PipelinedConnection(HOST, server.port, registry, connect_timeout=IO_TIMEOUT,
                               read_timeout=read_timeout, max_size=1 << 20)


@pytest.fixture
def lane(server: ScriptedServer, registry: ConnectionRegistry
         ) -> Iterator[PipelinedConnection]:
    conn = _lane(server, registry)
    yield conn
    conn.close()


class Files:
    """Writes files for uploads in the test's folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, name: str, content: bytes) -> Path:
        path = self.folder / name.strip("/").replace("/", "-")
        path.write_bytes(content)
        return path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def _request(target: str, size: int) -> UploadRequest:
    return UploadRequest(target, f"http://{HOST}{target}", {
        "Content-Type": "application/octet-stream", "Content-Length": str(size)})


def _write(lane: PipelinedConnection, files: Files, target: str, content: bytes) -> int:
    return lane.write(_request(target, len(content)), files(target, content), len(content))


def _both_pipelined(server: ScriptedServer, lane: PipelinedConnection, files: Files
                    ) -> tuple[Peer, dict[str, int]]:
    """Two uploads written; the server accepts one connection and reads both complete
    requests from it before answering anything: that is pipelining."""
    tickets = {target: _write(lane, files, target, target.encode() * 10)
               for target in ("/upload/first/10", "/upload/second/20")}
    peer = server.accept()
    peer.read_request()
    peer.read_request()
    assert [r.path for r in peer.requests] == list(tickets)
    return peer, tickets


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, Future[Any]]:
    future: Future[Any] = Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as exc:  # the test inspects it
            future.set_exception(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, future


# -- the tests ------------------------------------------------------------------------------


def test_two_small_uploads_are_pipelined_on_one_connection(
    server: ScriptedServer, lane: PipelinedConnection, files: Files,
) -> None:
    """Why: pipelining is the point of the module. Both requests must be on the wire
    before either answer, and each ticket must get the answer to ITS request even though
    the answers share one byte stream (a mix-up would mark the wrong file as stored)."""
    peer, tickets = _both_pipelined(server, lane, files)
    statuses = {}
    for request, status in zip(peer.requests, (200, 208), strict=True):
        statuses[request.path] = status
        peer.answer(status, f"echo {request.path}".encode())
    for target, ticket in tickets.items():
        answer = lane.read(ticket)
        assert answer.status == statuses[target]
        assert answer.body == f"echo {target}".encode()
        assert answer.header("content-length") == str(len(answer.body))
    assert len(server.peers) == 1 and not server.connection_waiting()


def test_request_bytes_are_exactly_head_and_file(
    server: ScriptedServer, lane: PipelinedConnection, files: Files,
) -> None:
    """Why: the connection writes the request head itself instead of using
    ``http.client``, so the exact bytes must be checked: request line, ``Host`` first with
    the port, the caller's headers in order, a blank line, then the file unchanged. An
    empty file sends the head alone, and reuses the kept-alive connection."""
    content = bytes(range(256)) * 3 + b"\r\n\r\nnot a header\r\n"
    ticket = _write(lane, files, "/shaman/files/abc/790", content)
    peer = server.accept()
    request = peer.read_request()
    expected_head = (f"POST /shaman/files/abc/790 HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
                     f"Content-Type: application/octet-stream\r\n"
                     f"Content-Length: {len(content)}\r\n\r\n").encode()
    assert request.raw == expected_head + content
    assert request.body == content
    peer.answer(200, b"")
    assert lane.read(ticket).status == 200

    ticket = _write(lane, files, "/empty/0", b"")
    request = peer.read_request()
    assert request.raw == (f"POST /empty/0 HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
                           "Content-Type: application/octet-stream\r\n"
                           "Content-Length: 0\r\n\r\n").encode()
    peer.answer(208, b"")
    assert lane.read(ticket).status == 208
    assert peer.unread == b""
    assert len(server.peers) == 1 and not server.connection_waiting()


def test_requests_behind_a_connection_close_answer_fail_as_never_read(
    server: ScriptedServer, lane: PipelinedConnection, files: Files,
) -> None:
    """Why: a server may answer ``Connection: close`` and drop pipelined requests it has
    not answered (RFC 9112 section 9.3.2). Those were never processed: their reads must
    fail (the caller sends them again), never wait for an answer that cannot come, and
    the next write must go out on a new connection, byte for byte the same request."""
    first_peer, tickets = _both_pipelined(server, lane, files)
    answered, dropped = first_peer.requests
    first_peer.answer(200, f"echo {answered.path}".encode(), close=True)
    first_peer.close()

    first = lane.read(tickets[answered.path])
    assert (first.status, first.body) == (200, f"echo {answered.path}".encode())
    with pytest.raises(RequestNotRead) as info:
        lane.read(tickets[dropped.path])
    assert isinstance(info.value, ExchangeFailed)

    again = _write(lane, files, dropped.path, dropped.path.encode() * 10)
    second_peer = server.accept()
    resent = second_peer.read_request()
    assert resent.raw == dropped.raw
    second_peer.answer(200, f"echo {resent.path}".encode())
    second = lane.read(again)
    assert (second.status, second.body) == (200, f"echo {dropped.path}".encode())
    assert len(server.peers) == 2 and not server.connection_waiting()
    assert second_peer.unread == b""


@pytest.mark.parametrize("hang_up", [Peer.close, Peer.reset], ids=["fin", "rst"])
def test_dropped_connection_fails_every_waiting_upload_then_recovers(
    server: ScriptedServer, lane: PipelinedConnection, files: Files,
    hang_up: Callable[[Peer], None],
) -> None:
    """Why: when a connection dies with requests read but unanswered, the server may have
    stored them or not, so each read must raise ``ExchangeFailed`` (the client then asks
    for the file's status), not hang and not get another request's answer. The dead
    connection must not poison later uploads."""
    peer, tickets = _both_pipelined(server, lane, files)
    hang_up(peer)
    for ticket in tickets.values():
        with pytest.raises(ExchangeFailed) as info:
            lane.read(ticket)
        assert not isinstance(info.value, RequestNotRead)

    ticket = _write(lane, files, "/after/1", b"x")
    new_peer = server.accept()
    assert new_peer.read_request().path == "/after/1"
    new_peer.answer(200, b"fine")
    assert lane.read(ticket).body == b"fine"
    assert len(server.peers) == 2


def test_idle_connection_closed_by_the_server_is_replaced(
    server: ScriptedServer, lane: PipelinedConnection, files: Files,
) -> None:
    """Why: servers close idle keep-alive connections without saying so beforehand.
    Writing the next upload on such a connection would fail it for nothing; the
    connection must see the close (the socket turns readable) and open a new one."""
    ticket = _write(lane, files, "/one/1", b"1")
    first_peer = server.accept()
    first_peer.read_request()
    first_peer.answer(200, b"")  # keep-alive: no Connection: close
    assert lane.read(ticket).status == 200
    client_sock = lane.sock  # peeked at only to wait for the FIN
    assert client_sock is not None
    first_peer.close()
    assert select.select([client_sock], [], [], IO_TIMEOUT)[0], "FIN never reached the client"

    ticket = _write(lane, files, "/two/2", b"22")
    second_peer = server.accept()
    assert second_peer.read_request().body == b"22"
    second_peer.answer(201, b"")
    assert lane.read(ticket).status == 201
    assert len(server.peers) == 2
    assert client_sock.fileno() == -1  # the stale connection was closed, not leaked


def test_idle_close_is_seen_on_a_descriptor_above_1023(
    server: ScriptedServer, lane: PipelinedConnection, files: Files,
) -> None:
    """Why: ``select.select`` refuses descriptor numbers of 1024 or more, which a long
    Blender session with many files open reaches; the idle check must work there too.
    Descriptors below 1024 are filled first, so the connection gets a high one: it must
    be kept while open and replaced once the server closed it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= 1100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    fillers: list[int] = []
    try:
        fillers.append(os.open(os.devnull, os.O_RDONLY))
        while fillers[-1] < 1030:  # every lower number taken (the lowest free is used)
            fillers.append(os.dup(fillers[0]))
        ticket = _write(lane, files, "/high/1", b"h")
        assert lane.sock is not None and lane.sock.fileno() >= 1024
        peer = server.accept()
        peer.read_request()
        peer.answer(200, b"")
        assert lane.read(ticket).status == 200
        # Still open: kept (``select`` would have refused the number, and a check that
        # cannot look must treat the connection as closed).
        ticket = _write(lane, files, "/high/2", b"hh")
        assert peer.read_request().body == b"hh" and not server.connection_waiting()
        peer.answer(200, b"")
        assert lane.read(ticket).status == 200
        client_sock = lane.sock
        peer.close()
        poller = select.poll()  # wait for the FIN (select cannot take this number)
        poller.register(client_sock, select.POLLIN)
        assert poller.poll(IO_TIMEOUT * 1000), "FIN never reached the client"
        ticket = _write(lane, files, "/high/3", b"hhh")  # sees the FIN through poll
        assert client_sock.fileno() == -1
        fresh = server.accept()
        assert fresh.read_request().body == b"hhh"
        fresh.answer(200, b"")
        assert lane.read(ticket).status == 200
    finally:
        lane.close()
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_body_larger_than_fits_goes_the_ordinary_way(
    server: ScriptedServer, files: Files,
) -> None:
    """Why: a large body is sent in chunks and may be cut short by an early answer, which
    leaves its connection unusable; pipelining it would put other uploads at risk and
    queue them behind it. The lane refuses it, and the ordinary upload (``requests``)
    sends it whole on a connection of its own while a small upload waits on the lane."""
    settings = ClientSettings(chunk_size=1024, max_attempts=1)
    with ShamanClient(f"http://{HOST}:{server.port}", settings) as client:
        [lane] = client.lanes()
        small_path = files("small", b"s")
        sha_small = hashlib.sha256(b"s").hexdigest()
        ticket = lane.write(client.upload_request(sha_small, 1, small_path), small_path, 1)
        shared = server.accept()
        shared.read_request()

        content = bytes(i % 251 for i in range(5000))
        assert lane.fits(1024) and not lane.fits(5000)
        large_path = files("large", content)
        sha = hashlib.sha256(content).hexdigest()
        with pytest.raises(ValueError, match="too large"):
            lane.write(client.upload_request(sha, 5000, large_path), large_path, 5000)
        thread, large = _in_thread(lambda: client.upload(sha, 5000, large_path))
        own = server.accept()
        request = own.read_request()
        assert request.path == f"/api/v3/shaman/files/{sha}/5000" and request.body == content
        own.answer(200, b"")
        assert large.result(IO_TIMEOUT) is UploadResult.STORED
        thread.join(IO_TIMEOUT)

        shared.answer(200, b"small")
        assert lane.read(ticket).body == b"small"
        assert len(shared.requests) == 1 and shared.unread == b"" and own.unread == b""
        assert len(server.peers) == 2 and not server.connection_waiting()


def test_abort_interrupts_a_read_waiting_for_an_answer(
    server: ScriptedServer, registry: ConnectionRegistry, files: Files,
) -> None:
    """Why: Cancel in Blender calls ``ConnectionRegistry.abort()``; the connection must be
    registered so that a read blocked waiting for an answer returns at once, not after
    the 30 s read timeout, and the requests behind it fail too. After that nothing more
    is written."""
    lane = _lane(server, registry, read_timeout=30.0)
    try:
        started = time.monotonic()
        first = _write(lane, files, "/wait/1", b"data")
        second = _write(lane, files, "/queued/2", b"data")
        peer = server.accept()
        peer.read_request()
        peer.read_request()
        thread, waiting = _in_thread(lambda: lane.read(first))
        assert registry.abort() == 1
        with pytest.raises(ExchangeFailed) as info:
            waiting.result(IO_TIMEOUT)
        assert isinstance(info.value.__cause__, (OSError, http.client.HTTPException))
        thread.join(IO_TIMEOUT)
        with pytest.raises(ExchangeFailed):
            lane.read(second)
        assert time.monotonic() - started < 10.0  # far below the 30 s read timeout
        with pytest.raises(Cancelled):
            _write(lane, files, "/late/3", b"late")
        assert not server.connection_waiting()
    finally:
        lane.close()


def test_bytes_nobody_asked_for_are_never_taken_as_the_next_answer(
    server: ScriptedServer, lane: PipelinedConnection, files: Files,
) -> None:
    """Why: a server that sends a stray second answer (or junk) after an answer would
    otherwise hand that stale answer to the next upload on the connection, which would
    then count a file as stored that the server never received. The connection must be
    dropped instead and the next upload sent on a fresh one."""
    ticket = _write(lane, files, "/one/1", b"1")
    first_peer = server.accept()
    first_peer.read_request()
    stray = b"HTTP/1.1 208 Stale\r\nContent-Length: 5\r\n\r\nstale"
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    first_peer.sock.sendall(head + stray)  # one piece: the reader gets both at once
    assert lane.read(ticket).status == 200

    ticket = _write(lane, files, "/two/2", b"22")
    second_peer = server.accept()
    assert second_peer.read_request().body == b"22"
    second_peer.answer(200, b"fresh")
    answer = lane.read(ticket)
    assert (answer.status, answer.body) == (200, b"fresh")
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


def test_writes_ahead_and_reads_in_order(
    server: ScriptedServer, lane: PipelinedConnection, files: Files,
) -> None:
    """Why: the pipeline's fast lane writes several uploads before it reads any answer,
    from one thread. The server must see them back to back on one connection, and the
    answers must come back in the order written; after a 'Connection: close' answer the
    next write goes out on a new connection."""
    tickets = [_write(lane, files, f"/files/{i}", bytes([65 + i]) * (i + 1))
               for i in range(3)]
    assert len(set(tickets)) == 3
    peer = server.accept()
    got = [peer.read_request() for _ in range(3)]
    assert [r.body for r in got] == [b"A", b"BB", b"CCC"]
    for i, status in enumerate((200, 425, 208)):
        peer.answer(status, f"answer {i}".encode(), close=(i == 2))
    answers = [lane.read(t) for t in tickets]
    assert [(a.status, a.body) for a in answers] == [
        (200, b"answer 0"), (425, b"answer 1"), (208, b"answer 2")]

    ticket = _write(lane, files, "/files/next", b"n")
    fresh = server.accept()  # the closed connection is not used again
    assert fresh.read_request().body == b"n"
    fresh.answer(200, b"")
    assert lane.read(ticket).status == 200


def test_never_reads_an_answer_from_a_newer_connection(
    server: ScriptedServer, lane: PipelinedConnection, files: Files,
) -> None:
    """Why: when a connection is dropped (a failed write, a reset) the next write makes a
    new one; requests written on the old one must then fail as unanswered, never take the
    answer meant for a request on the new one (that would count a file as stored that
    the server never got)."""
    old = _write(lane, files, "/files/old", b"o")
    first = server.accept()
    first.read_request()
    lane.reset()  # what a failed write does
    new = _write(lane, files, "/files/new", b"n")
    second = server.accept()
    second.read_request()
    second.answer(200, b"for new")
    with pytest.raises(ExchangeFailed):
        lane.read(old)
    assert lane.read(new).body == b"for new"


def test_a_file_that_changed_is_refused_before_anything_is_sent(
    server: ScriptedServer, lane: PipelinedConnection, files: Files,
) -> None:
    """Why: the file is read whole (one byte more than hashed) before connecting, so a
    file that grew or shrank since it was hashed is told without the network, and no
    request with the wrong bytes goes out."""
    path = files("grown", b"x" * 11)
    with pytest.raises(LocalFileChanged, match="larger"):
        lane.write(_request("/grown/10", 10), path, 10)
    with pytest.raises(LocalFileChanged, match="shorter"):
        lane.write(_request("/grown/12", 12), path, 12)
    assert lane.sock is None and not server.connection_waiting()


def test_two_connections_when_asked_for(server: ScriptedServer, files: Files) -> None:
    """Why: ``--connections 2`` is for servers that handle connections in parallel (a
    multi-core Manager). With two asked for, the client gives two lanes, each with a
    connection of its own."""
    settings = ClientSettings(upload_connections=2)
    with ShamanClient(f"http://{HOST}:{server.port}", settings) as client:
        lanes = client.lanes()
        assert len(lanes) == 2
        tickets = [_write(lane, files, f"/two/{i}", b"x" * (i + 1))
                   for i, lane in enumerate(lanes)]
        peers = [server.accept(), server.accept()]
        for peer in peers:
            request = peer.read_request()
            peer.answer(200, request.path.encode())
        answers = sorted(lane.read(t).body for lane, t in zip(lanes, tickets, strict=True))
        assert answers == [b"/two/0", b"/two/1"]
        assert [len(p.requests) for p in peers] == [1, 1]


def test_lane_requests_are_byte_for_byte_those_of_ordinary_uploads(
    server: ScriptedServer, tmp_path: Path,
) -> None:
    """Why: the lane and ``requests`` write their requests apart; a Manager (and its
    logs) must see the same request either way, User-Agent included. Both are built by
    ``upload_request``; this checks that nothing is added on either way."""
    path = tmp_path / "tex.png"
    path.write_bytes(b"pixels")
    sha = hashlib.sha256(b"pixels").hexdigest()
    with ShamanClient(f"http://{HOST}:{server.port}") as client:
        [lane] = client.lanes()
        lane.write(client.upload_request(sha, 6, path, original_filename="tëx.png"), path, 6)
        piped = server.accept().read_request()
        lane.reset()
        thread, done = _in_thread(lambda: client.upload(sha, 6, path, original_filename="tëx.png"))
        peer = server.accept()
        ordinary = peer.read_request()
        peer.answer(200, b"")
        assert done.result(IO_TIMEOUT) is UploadResult.STORED
        thread.join(IO_TIMEOUT)
    assert piped.line == ordinary.line == f"POST /api/v3/shaman/files/{sha}/6 HTTP/1.1"
    assert piped.headers == ordinary.headers
    assert piped.headers["User-Agent"] and piped.body == ordinary.body == b"pixels"
    assert piped.raw == ordinary.raw


def test_lanes_only_where_they_help(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why: pipelining needs a plain-http connection straight to the Manager; through
    TLS or a proxy every upload goes through ``requests``, and ``pipelining=False``
    switches it off (so the fault table can run against both ways)."""
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    cases = [("http://127.0.0.1:9", ClientSettings(), 1),
             ("http://127.0.0.1:9", ClientSettings(upload_connections=3), 3),
             ("http://127.0.0.1:9", ClientSettings(pipelining=False), 0),
             ("https://127.0.0.1:9", ClientSettings(), 0)]
    for url, settings, count in cases:
        with ShamanClient(url, settings) as client:
            assert len(client.lanes()) == count, (url, settings)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:3128")
    with ShamanClient("http://manager.example:8080") as client:
        assert client.lanes() == []
