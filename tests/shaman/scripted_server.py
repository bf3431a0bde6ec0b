"""A raw-socket HTTP server on loopback that a test drives one call at a time (accept,
read a request, answer, hang up), for tests about *when* bytes arrive and on *which*
connection. Every socket has a timeout, so a regression fails a test instead of hanging.
"""

from __future__ import annotations

import select
import socket
import struct
from dataclasses import dataclass, field

IO_TIMEOUT = 5.0  # any single wait in these tests; only reached when something is broken
HOST = "127.0.0.1"


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
