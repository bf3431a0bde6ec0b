"""Socket-level pieces both ways of sending share: the registry that lets ``abort()`` cut
every connection of a client, a non-blocking "has the server said something" check, and
the few words that describe a low-level failure in a message.

Why the registry: neither ``requests`` nor a plain socket can stop a call blocked in
``send`` or ``recv`` from another thread. Every connection registers here, so
``ConnectionRegistry.abort`` can ``shutdown()`` the sockets and the blocked call returns.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import weakref
from typing import Protocol


class HasSocket(Protocol):
    """A connection: its socket, or None while it has none."""

    sock: socket.socket | None


class ConnectionRegistry:
    """Every open connection of one client, so all of them can be shut down at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[HasSocket] = weakref.WeakSet()
        self.aborted = threading.Event()

    def add(self, conn: HasSocket) -> None:
        with self._lock:
            self._connections.add(conn)
        if self.aborted.is_set():  # connected while abort() was running: stop it too
            shutdown(conn)

    def discard(self, conn: HasSocket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def abort(self) -> int:
        """Mark aborted and shut every known socket down; returns how many were shut."""
        self.aborted.set()
        with self._lock:
            conns = list(self._connections)
        return sum(shutdown(conn) for conn in conns)


def shutdown(conn: HasSocket) -> int:
    """Shut ``conn``'s socket down both ways (1), or 0 if it has none or is closed."""
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


def causes(exc: BaseException) -> list[BaseException]:
    """``exc``, the exceptions in its args, and their ``reason``s and causes (depth first,
    so the last one is the innermost): libraries wrap a socket error in layers."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.append(item)
        todo.extend(a for a in item.args if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            nxt = getattr(item, attr, None)
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return seen


def failure_words(exc: BaseException) -> str:
    """The innermost useful words about a failed exchange, lower case, for the end of a
    sentence: the operating system's own ("connection reset by peer") when there are any."""
    chain = causes(exc)
    for item in reversed(chain):
        if isinstance(item, OSError) and item.strerror:
            return str(item.strerror).lower()
    if any(isinstance(item, http.client.RemoteDisconnected) for item in chain):
        return "the server closed the connection without answering"
    innermost = chain[-1]
    text = str(innermost) or type(innermost).__name__
    return text if len(text) <= 300 else text[:300] + "..."
