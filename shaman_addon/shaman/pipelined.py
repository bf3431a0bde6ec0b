"""The optional pipelined way to send small uploads: one plain-http keep-alive connection,
driven by ONE thread, that writes requests ahead and reads the answers in order.

Why it exists: a cold submission sends thousands of small files. Through ``requests``
each costs about 0.7 ms of client CPU on top of the exchange, and one request at a time
leaves the server idle for a round trip per file. Written ahead on one connection (HTTP/1.1
pipelining), the server always has the next request waiting; one thread doing both halves
needs no hand-off between threads per upload. Uploads are content-addressed, so a request
sent twice is harmless, which is what makes pipelining a POST acceptable.

What it does not do: retries, status checks, messages. Anything but a clean answer is
the caller's to send again through ``ShamanClient.upload(..., first_attempt=...)``.
Failures are raised as ``TransportFailure`` types straight from the socket errors.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import time
from collections import deque
from pathlib import Path

from ..errors import Cancelled, ConnectFailed, ExchangeFailed, RequestNotRead
from .answer_reader import AnswerReader
from .messages import Answer, UploadRequest, host_header
from .sockets import ConnectionRegistry, failure_words, readable_now
from .upload_body import read_whole

log = logging.getLogger(__name__)


def _exchange_failed(exc: BaseException) -> ExchangeFailed:
    return ExchangeFailed(failure_words(exc), timed_out=isinstance(exc, TimeoutError))


class PipelinedConnection:
    """See the module docstring. Not thread-safe: one thread writes and reads; only
    ``abort()`` of the client's ``ConnectionRegistry`` reaches in, from any thread."""

    def __init__(self, host: str, port: int, registry: ConnectionRegistry, *,
                 connect_timeout: float | None, read_timeout: float | None,
                 max_size: int, answer_deadline_s: float | None = None) -> None:
        self._address = (host, port)
        self._host_header = host_header(host, port)
        self._registry = registry
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_size = max_size
        self._answer_deadline_s = answer_deadline_s  # each answer whole within this
        self.sock: socket.socket | None = None  # what abort() shuts down
        self._reader: AnswerReader | None = None
        self._tickets: deque[int] = deque()  # written on this connection, oldest first
        self._not_read: set[int] = set()  # behind a 'Connection: close' answer
        self._next_ticket = 0
        registry.add(self)

    def fits(self, size: int) -> bool:
        """Small enough to be read whole and written with its head in one piece."""
        return 0 <= size <= self._max_size

    def write(self, request: UploadRequest, source: str | Path, size: int) -> int:
        """Read ``source`` whole and write its request in one send; returns the ticket
        for ``read``. Raises LocalFileChanged (its size is not ``size``), ConnectFailed,
        ExchangeFailed (the write failed: the connection is dropped), Cancelled."""
        if self._registry.aborted.is_set():
            raise Cancelled("upload cancelled: the client was stopped")
        if not self.fits(size):
            raise ValueError(f"{size} bytes is too large to pipeline")
        # Read before connecting: a file that changed is told without the network.
        data = read_whole(os.fspath(source), size, request.head(self._host_header))
        if self.sock is not None and not self._tickets and self._closed_while_idle():
            log.debug("pipelined connection closed by the server while idle; a new one")
            self._drop()
        sock = self.sock if self.sock is not None else self._connect()
        try:
            sock.sendall(data)
        except OSError as exc:
            self._drop()  # part of a request may be on the wire: nothing can follow it
            raise _exchange_failed(exc) from exc
        ticket = self._next_ticket
        self._next_ticket += 1
        self._tickets.append(ticket)
        return ticket

    def read(self, ticket: int) -> Answer:
        """The answer to the oldest request written, which must be ``ticket``'s.

        Raises ExchangeFailed when ``ticket``'s connection broke before its answer (an
        answer on a newer connection is never handed to an older request), and
        RequestNotRead for a request behind an answer that closed the connection."""
        if ticket in self._not_read:
            self._not_read.discard(ticket)
            raise RequestNotRead("the server closed the connection after an earlier answer "
                                 "without reading this request")
        if not self._tickets or self._tickets[0] != ticket or self._reader is None:
            raise ExchangeFailed("the connection was dropped before this request's answer "
                                 "came")
        try:
            deadline = (None if self._answer_deadline_s is None
                        else time.monotonic() + self._answer_deadline_s)
            answer = self._reader.read(deadline)
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise _exchange_failed(exc) from exc
        self._tickets.popleft()
        if answer.will_close:
            self._not_read.update(self._tickets)
            self._drop()
        return answer

    def reset(self) -> None:
        """Drop the connection (after a failure, or to stop): unread answers are lost."""
        self._drop()
        self._not_read.clear()

    def _drop(self) -> None:
        """Close the connection; every request written on it is unanswered for good."""
        sock, self.sock, self._reader = self.sock, None, None
        self._tickets.clear()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self.reset()
        self._registry.discard(self)

    def _closed_while_idle(self) -> bool:
        """Readable (or bytes already read) with no request out means the server closed
        it or sent something nobody asked for: either way it cannot be trusted."""
        if self.sock is None or (self._reader is not None and self._reader.leftover):
            return True
        try:
            return readable_now(self.sock)
        except (OSError, ValueError):
            return True

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        except socket.gaierror as exc:
            raise ConnectFailed(failure_words(exc), kind="unresolved") from exc
        except TimeoutError as exc:
            raise ConnectFailed(failure_words(exc), kind="timeout") from exc
        except ConnectionRefusedError as exc:
            raise ConnectFailed("connection refused", kind="refused") from exc
        except OSError as exc:
            raise ConnectFailed(failure_words(exc), kind="other") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self._read_timeout)
        self.sock, self._reader = sock, AnswerReader(sock)
        if self._registry.aborted.is_set():  # abort() ran while this one was connecting
            self._drop()
            raise Cancelled("upload cancelled: the client was stopped")
        return sock
