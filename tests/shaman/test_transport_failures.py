"""Both ways of sending an upload meet the same network failure and come out the same:
the same ``TransportFailure`` type (``kind``, ``timed_out``), and through
``ShamanClient.upload`` the same error class with the same sentence.

Why: the pipelined lane's failures are handed to ``upload(..., first_attempt=...)``, which
must then behave exactly as if its own ``requests`` attempt had met them (retries,
status check, messages). If the two paths classified a failure differently, a file could
be retried where it should be checked, or reported in other words, depending only on
which way it happened to go. Each case runs the ``requests`` way (an ordinary upload)
and the lane's way against the same scripted behaviour.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scripted_server import HOST, IO_TIMEOUT, Peer, ScriptedServer

from shaman_addon.errors import (
    ConnectFailed,
    ExchangeFailed,
    ServerTimeout,
    ServerUnreachable,
    ShamanError,
    TransportFailure,
    UploadReset,
)
from shaman_addon.shaman.client import ClientSettings, ShamanClient

CONTENT = b"pixels"
SHA = hashlib.sha256(CONTENT).hexdigest()


@dataclass
class Case:
    """Where the client connects, and what the server does once it read the request
    (None: the client never gets as far as a request)."""

    url: str
    serve: Callable[[Peer], None] | None
    failure: type[TransportFailure]
    kind: str | None
    timed_out: bool
    error: type[ShamanError]
    words: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _reset_mid_answer(peer: Peer) -> None:
    peer.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    peer.reset()


def _never_answer(peer: Peer) -> None:
    """Read the request and say nothing: the client's read timeout (0.3 s) ends it."""


@contextlib.contextmanager
def _full_backlog() -> Iterator[str]:
    """A port whose listen queue is full: a new connection's SYN gets no answer, so
    connecting times out (Linux keeps backlog + 1 connections queued)."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect((HOST, port))
        fillers.append(filler)
    try:
        yield f"http://{HOST}:{port}"
    finally:
        for sock in [*fillers, listener]:
            sock.close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "tex.png"
    path.write_bytes(CONTENT)
    return path


def _settings() -> ClientSettings:
    return ClientSettings(max_attempts=1, connect_timeout=0.3, read_timeout=0.3)


def _by_requests(case: Case, server: ScriptedServer, source: Path) -> ShamanError:
    """An ordinary upload (through ``requests``) meets the case; its error."""
    outcome: dict[str, Any] = {}
    with ShamanClient(case.url, _settings()) as client:

        def run() -> None:
            try:
                outcome["result"] = client.upload(SHA, len(CONTENT), source)
            except BaseException as exc:  # inspected below
                outcome["error"] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        if case.serve is not None:
            peer = server.accept()
            peer.read_request()
            case.serve(peer)
        thread.join(IO_TIMEOUT * 2)
        assert not thread.is_alive()
    error = outcome.get("error")
    assert isinstance(error, ShamanError), outcome
    return error


def _by_lane(case: Case, server: ScriptedServer, source: Path
             ) -> tuple[TransportFailure, ShamanError]:
    """The lane meets the case; its failure, then ``upload``'s error for it."""
    with ShamanClient(case.url, _settings()) as client:
        [lane] = client.lanes()
        request = client.upload_request(SHA, len(CONTENT), source)
        with pytest.raises(TransportFailure) as info:
            ticket = lane.write(request, source, len(CONTENT))
            peer = server.accept()
            peer.read_request()
            assert case.serve is not None
            case.serve(peer)
            lane.read(ticket)
        failure = info.value
        with pytest.raises(ShamanError) as raised:
            client.upload(SHA, len(CONTENT), source, first_attempt=failure)
    return failure, raised.value


@pytest.mark.parametrize("name", ["refused", "unresolved", "connect timeout",
                                  "reset mid-answer", "read timeout"])
def test_both_ways_classify_a_failure_alike(name: str, server: ScriptedServer,
                                            source: Path) -> None:
    with contextlib.ExitStack() as stack:
        cases = {
            "refused": lambda: Case(
                f"http://{HOST}:{_free_port()}", None, ConnectFailed, "refused", False,
                ServerUnreachable, "connection refused"),
            "unresolved": lambda: Case(
                "http://shaman-host.invalid:8080", None, ConnectFailed, "unresolved", False,
                ServerUnreachable, "could not be resolved"),
            "connect timeout": lambda: Case(
                stack.enter_context(_full_backlog()), None, ConnectFailed, "timeout", True,
                ServerTimeout, "connect timeout setting"),
            "reset mid-answer": lambda: Case(
                f"http://{HOST}:{server.port}", _reset_mid_answer, ExchangeFailed, None,
                False, UploadReset, "dropped after 6 of 6 bytes"),
            "read timeout": lambda: Case(
                f"http://{HOST}:{server.port}", _never_answer, ExchangeFailed, None, True,
                UploadReset, "no progress for 0.3 s, the read timeout setting"),
        }
        case = cases[name]()
        by_requests = _by_requests(case, server, source)
        failure, by_lane = _by_lane(case, server, source)

    seen = by_requests.__cause__
    assert isinstance(seen, TransportFailure), repr(seen)
    for got in (seen, failure):
        assert type(got) is case.failure, repr(got)
        assert getattr(got, "kind", None) == case.kind
        assert got.timed_out is case.timed_out
    assert by_lane.__cause__ is failure
    assert type(by_requests) is type(by_lane) is case.error
    assert str(by_requests) == str(by_lane)
    assert case.words in str(by_lane) and case.url in str(by_lane)
