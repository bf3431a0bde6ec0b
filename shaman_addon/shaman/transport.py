"""The HTTP plumbing under the Shaman client: a pooled ``requests`` session that can be
interrupted from another thread, and an upload body streamed from disk.

Why this exists: ``requests`` has no way to stop a call that is blocked in ``send`` or
``recv``. Every connection made here registers itself, so ``ConnectionRegistry.abort``
can ``shutdown()`` the sockets and the blocked call returns at once. The upload body is
an iterator of chunks read from the open file into one reused buffer (constant memory for
any file size); between chunks it reports progress, honours a cancel flag and stops
sending when the server has already answered (an early 208), so the answer can be read.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import ssl
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, cast

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..errors import Cancelled, LocalFileChanged

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 1024 * 1024


def readable_now(sock: socket.socket) -> bool:
    """True when reading ``sock`` would not block (data, or the peer closed).

    ``poll`` where there is one: ``select`` refuses descriptors numbered 1024 or more,
    which a long Blender session with many files open reaches. (Windows has no ``poll``;
    its ``select`` takes any socket.)"""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


class ConnectionRegistry:
    """Every open connection of one client, so all of them can be shut down at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[HTTPConnection] = weakref.WeakSet()
        self.aborted = threading.Event()

    def add(self, conn: HTTPConnection) -> None:
        with self._lock:
            self._connections.add(conn)
        if self.aborted.is_set():  # connected while abort() was running: stop it too
            _shutdown(conn)

    def discard(self, conn: HTTPConnection) -> None:
        with self._lock:
            self._connections.discard(conn)

    def abort(self) -> int:
        """Mark aborted and shut every known socket down; returns how many were shut."""
        self.aborted.set()
        with self._lock:
            conns = list(self._connections)
        return sum(_shutdown(conn) for conn in conns)


def _shutdown(conn: HTTPConnection) -> int:
    sock = conn.sock  # read once: another thread may set it to None
    if sock is None:
        return 0
    try:
        # The plain socket call, also for TLS: SSLSocket.shutdown() would drop its SSL
        # object under a thread still reading or writing through it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, ValueError):  # already closed or never connected
        return 0
    return 1


class _TrackingMixin:
    """Registers the connection on connect, hands itself to an upload body on request,
    and closes itself after an upload whose body was not sent in full."""

    registry: ConnectionRegistry
    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.registry.add(self)  # type: ignore[arg-type]

    def close(self) -> None:
        self.registry.discard(self)  # type: ignore[arg-type]
        super().close()  # type: ignore[misc]

    def request(self, method: str, url: str, body: Any = None, *args: Any, **kw: Any) -> None:
        if isinstance(body, UploadBody):
            body.attach(self)  # type: ignore[arg-type]
        self._upload_body = body if isinstance(body, UploadBody) else None
        super().request(method, url, body, *args, **kw)  # type: ignore[misc]

    def getresponse(self, *args: Any, **kw: Any) -> Any:
        response = super().getresponse(*args, **kw)  # type: ignore[misc]
        body = getattr(self, "_upload_body", None)
        self._upload_body = None
        if body is not None and not body.complete:
            # Part of the body is unsent, so this connection can never carry another
            # request. Detach its socket: the pool then sees a closed connection and makes
            # a new one, while the answer already started stays readable (the response
            # holds the socket's file, which keeps the descriptor open until it is read).
            log.debug("dropping connection after an early answer (%d bytes sent)", body.sent)
            sock, self.sock = self.sock, None
            self.registry.discard(self)  # type: ignore[arg-type]
            if sock is not None:
                sock.close()
        return response


def _connection_classes(
    registry: ConnectionRegistry,
) -> tuple[type[HTTPConnectionPool], type[HTTPSConnectionPool]]:
    """Pool classes whose connections report to ``registry`` (one set per client)."""
    http_conn = type("TrackedHTTPConnection", (_TrackingMixin, HTTPConnection), {})
    https_conn = type("TrackedHTTPSConnection", (_TrackingMixin, HTTPSConnection), {})
    http_conn.registry = registry  # type: ignore[attr-defined]
    https_conn.registry = registry  # type: ignore[attr-defined]
    http_pool = type("TrackedHTTPConnectionPool", (HTTPConnectionPool,),
                     {"ConnectionCls": http_conn})
    https_pool = type("TrackedHTTPSConnectionPool", (HTTPSConnectionPool,),
                      {"ConnectionCls": https_conn})
    return http_pool, https_pool


class TrackingAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose pools (direct and through a proxy) use tracked
    connections. ``requests`` retries nothing itself: the client owns the retry rules."""

    def __init__(self, registry: ConnectionRegistry, pool_size: int) -> None:
        self._pool_classes = _connection_classes(registry)
        super().__init__(pool_connections=4, pool_maxsize=pool_size, max_retries=0)

    def _use_tracked_pools(self, manager: Any) -> None:
        http_pool, https_pool = self._pool_classes
        manager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._use_tracked_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools must stay SOCKS pools
            self._use_tracked_pools(manager)
        return manager

    def __setstate__(self, state: dict[str, Any]) -> None:  # pragma: no cover - pickling
        raise TypeError("TrackingAdapter cannot be unpickled")


def make_session(registry: ConnectionRegistry, pool_size: int) -> requests.Session:
    """A session whose http:// and https:// traffic goes through tracked pools."""
    session = requests.Session()
    adapter = TrackingAdapter(registry, pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class UploadBody:
    """The request body of one upload: ``size`` bytes of ``fileobj``, in chunks.

    ``requests`` sends an object with ``__iter__`` and ``__len__`` as a stream; the
    connection hands itself over in ``attach`` so the body can look at the socket.
    Each resume of the iterator means the previous chunk went out (``sendall`` returned),
    so that is where progress is reported and the cancel flag is checked.
    """

    def __init__(
        self,
        fileobj: BinaryIO,
        size: int,
        *,
        path: str,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        send_timeout: float | None = None,
        on_bytes: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        cancel_message: str = "upload cancelled",
    ) -> None:
        self._file = fileobj
        self._size = size
        self._path = path
        self._chunk_size = max(1, chunk_size)
        self._send_timeout = send_timeout
        self._on_bytes = on_bytes
        self.should_stop = should_stop
        self.cancel_message = cancel_message
        self._conn: HTTPConnection | None = None
        self.started = False  # at least one chunk was handed to the socket
        self.sent = 0  # bytes whose sendall() returned
        self.early_answer = False  # stopped because the server answered first

    def __len__(self) -> int:
        return self._size

    @property
    def complete(self) -> bool:
        return self.sent == self._size

    def attach(self, conn: HTTPConnection) -> None:
        self._conn = conn

    def _answer_waiting(self) -> bool:
        """True when the server has sent something (an answer, or closed) already."""
        sock = self._conn.sock if self._conn is not None else None
        if sock is None:
            return False
        if isinstance(sock, ssl.SSLSocket):
            # A readable TLS socket proves nothing: TLS 1.3 servers send session tickets
            # right after the handshake, which would stop every body before its first byte
            # on a fresh connection (and stall until the read timeout). Only decrypted
            # answer bytes count; a server that answered and closed still ends the send.
            return sock.pending() > 0
        try:
            return readable_now(sock)
        except (OSError, ValueError):
            return True  # socket gone: stop sending, the response read will tell

    def in_one_piece(self, head: bytes) -> memoryview | None:
        """``head`` and then the whole body in one buffer, for a body that fits one chunk;
        None for a larger one.

        Why: thousands of small uploads. On loopback each ``send`` also runs the receiving
        side's TCP work, so one system call for the request head and the file instead of
        two is a large part of what a small upload costs the client. Reading ``size + 1``
        bytes at once tells a file that grew since it was hashed (no ``fstat``); one read
        is also one instant, so the bytes sent are those of a single moment.
        """
        if self._size > self._chunk_size:
            return None
        start = len(head)
        buffer = bytearray(start + self._size + 1)
        buffer[:start] = head
        view = memoryview(buffer)
        read = cast(Any, self._file).readinto
        got = read(view[start:])
        while got < self._size:  # a short read: the file shrank (or an unusual file system)
            more = read(view[start + got:])
            if not more:
                raise LocalFileChanged(
                    f"{self._path} became shorter since it was hashed (expected "
                    f"{self._size} bytes, read {got}); it will be hashed again",
                    path=self._path,
                )
            got += more
        if got > self._size:
            raise LocalFileChanged(
                f"{self._path} is larger than the {self._size} bytes it had when it was "
                "hashed; it changed on disk, so it will be hashed again",
                path=self._path,
            )
        return view[:start + self._size]

    def sent_in_one_piece(self) -> None:
        """The buffer from ``in_one_piece`` went out: count the body as sent."""
        self.started = True
        self.sent = self._size
        if self._on_bytes is not None and self._size:
            self._on_bytes(self._size)

    def __iter__(self) -> Iterator[memoryview]:
        sock = self._conn.sock if self._conn is not None else None
        if (sock is not None and self._send_timeout is not None
                and sock.gettimeout() != self._send_timeout):
            # urllib3 leaves the connect timeout on the socket while sending the body.
            # (Only when it differs: settimeout is a system call that lets go of the GIL.)
            sock.settimeout(self._send_timeout)
        buffer = bytearray(min(self._chunk_size, max(self._size, 1)))
        view = memoryview(buffer)
        while self.sent < self._size:
            if self.should_stop():
                raise Cancelled(f"{self.cancel_message} ({self.sent} of {self._size} bytes sent)")
            if self._answer_waiting():
                self.early_answer = True
                log.debug("server answered after %d of %d bytes; stop sending", self.sent,
                          self._size)
                return
            want = min(len(buffer), self._size - self.sent)
            got = cast(Any, self._file).readinto(view[:want])
            if not got:
                raise LocalFileChanged(
                    f"{self._path} became shorter while it was being uploaded "
                    f"(expected {self._size} bytes, read {self.sent}); save it again and "
                    "resubmit",
                    path=self._path,
                )
            self.started = True
            yield view[:got]
            self.sent += got
            if self._on_bytes is not None:
                self._on_bytes(got)


def file_size(fileobj: BinaryIO) -> int:
    """Size of an open file, from the descriptor (not the path, which could be swapped)."""
    return os.fstat(fileobj.fileno()).st_size
