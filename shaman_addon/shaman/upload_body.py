"""An upload's bytes, read from disk: streamed in chunks (any size, constant memory), or
read whole in one go for a small file sent in one piece.

Streaming: between chunks the body reports progress, honours a cancel flag and stops
sending when the server has already answered (a real Manager answers 208 for content it
has before reading the body), so the answer can be read instead of sending gigabytes for
nothing. Whole: one read of ``size + 1`` bytes tells a file that grew or shrank since it
was hashed, and the bytes sent are those of one instant.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, cast

from ..errors import Cancelled, LocalFileChanged
from .settings import DEFAULT_CHUNK_SIZE
from .sockets import HasSocket, readable_now

log = logging.getLogger(__name__)


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
        self._conn: HasSocket | None = None
        self.sent = 0  # bytes whose sendall() returned

    def __len__(self) -> int:
        return self._size

    @property
    def complete(self) -> bool:
        return self.sent == self._size

    def attach(self, conn: HasSocket) -> None:
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
            yield view[:got]
            self.sent += got
            if self._on_bytes is not None:
                self._on_bytes(got)


def file_size(fileobj: BinaryIO) -> int:
    """Size of an open file, from the descriptor (not the path, which could be swapped)."""
    return os.fstat(fileobj.fileno()).st_size


def cannot_read(path: str, exc: OSError) -> LocalFileChanged:
    return LocalFileChanged(f"Cannot read {path} for upload: {exc.strerror or exc}", path=path)


def read_whole(path: str, size: int, head: bytes) -> memoryview:
    """``head`` followed by the ``size`` bytes of the file at ``path``, in one buffer.

    Why one buffer: on loopback each ``send`` also runs the receiving side's TCP work, so
    one system call for the request head and the file instead of two is a large part of
    what a small upload costs. Reading ``size + 1`` bytes at once tells a file that grew
    since it was hashed (no ``fstat``); a short read, one that shrank.
    """
    start = len(head)
    buffer = bytearray(start + size + 1)
    buffer[:start] = head
    view = memoryview(buffer)
    try:
        with open(path, "rb", buffering=0) as fileobj:
            got = fileobj.readinto(view[start:]) or 0
            while got < size:  # a short read: the file shrank (or an unusual file system)
                more = fileobj.readinto(view[start + got:])
                if not more:
                    raise LocalFileChanged(
                        f"{path} became shorter since it was hashed (expected {size} "
                        f"bytes, read {got}); it will be hashed again", path=path)
                got += more
    except OSError as exc:
        raise cannot_read(path, exc) from exc
    if got > size:
        raise LocalFileChanged(
            f"{path} is larger than the {size} bytes it had when it was hashed; it changed "
            "on disk, so it will be hashed again", path=path)
    return view[:start + size]
