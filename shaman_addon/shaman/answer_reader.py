"""Read HTTP/1.1 answers from a socket, one after another: status, headers, whole body.

Why not ``http.client.HTTPResponse``: it parses headers with the ``email`` package, and
for a cold submission of 3,000 small files that parse was the largest single piece of
the uploads' interpreter time (py-spy: 13% of all GIL-holding samples of the submitting
process, more than hashing). Upload answers are tiny and regular, so this reads them
straight from the socket into one buffer. What it reads: interim 1xx answers (skipped),
``Content-Length`` bodies, chunked bodies, and bodies that end when the server closes.
Errors are ``http.client`` exceptions (and the socket's ``OSError``s); the pipelined
connection turns them into transport failures.
"""

from __future__ import annotations

import http.client
import socket
import time

from .messages import Answer

MAX_LINE = 65536  # what http.client allows for one header line
MAX_HEADERS = 100
MAX_BODY = 16 << 20  # an answer to an upload is a few bytes, an error page some KiB
_RECV = 65536


class _Reader:
    """Bytes from a socket, read in large pieces and handed out by line or by count."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0
        self.closed = False  # the server closed its side
        self.deadline: float | None = None  # time.monotonic() by which the answer is in

    def _fill(self) -> bool:
        """Read more; False once the server has closed and nothing more will come."""
        if self.closed:
            return False
        data = self._sock.recv(_RECV)
        if self.deadline is not None and time.monotonic() > self.deadline:
            # Each recv has the socket's timeout; this bounds a server that drips.
            raise TimeoutError("the answer did not come whole within the overall deadline")
        if not data:
            self.closed = True
            return False
        self._buf = self._buf[self._pos:] + data
        self._pos = 0
        return True

    def line(self) -> bytes:
        """One line with its ending; what is left (maybe b'') if the server closed."""
        while True:
            end = self._buf.find(b"\n", self._pos)
            if end >= 0:
                line = self._buf[self._pos:end + 1]
                self._pos = end + 1
                break
            if len(self._buf) - self._pos > MAX_LINE:
                raise http.client.LineTooLong("header line")
            if not self._fill():
                line = self._buf[self._pos:]
                self._pos = len(self._buf)
                break
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        return line

    def exact(self, count: int) -> bytes:
        """``count`` bytes, or IncompleteRead if the server closes first."""
        while len(self._buf) - self._pos < count:
            if not self._fill():
                raise http.client.IncompleteRead(self._buf[self._pos:], count)
        data = self._buf[self._pos:self._pos + count]
        self._pos += count
        return data

    def until_closed(self) -> bytes:
        while self._fill():
            if len(self._buf) - self._pos > MAX_BODY:
                raise http.client.HTTPException(f"answer body over {MAX_BODY} bytes")
        data = self._buf[self._pos:]
        self._pos = len(self._buf)
        return data

    @property
    def leftover(self) -> bool:
        """Bytes after the answer: nothing was asked for them, so the stream is not ours."""
        return self._pos < len(self._buf)


class AnswerReader:
    """Answers read one after another from one connection, in the order the requests were
    sent (HTTP/1.1 pipelining): bytes read past one answer belong to the next."""

    def __init__(self, sock: socket.socket) -> None:
        self._reader = _Reader(sock)

    @property
    def leftover(self) -> bool:
        return self._reader.leftover

    def read(self, deadline: float | None = None) -> Answer:
        """The next answer on the connection, whole by ``deadline`` (``time.monotonic()``;
        TimeoutError after it: each read has the socket's timeout besides)."""
        reader = self._reader
        reader.deadline = deadline
        while True:
            first = reader.line()
            if not first:
                raise http.client.RemoteDisconnected(
                    "Remote end closed connection without response")
            version, status, reason = _status_line(first)
            headers = _headers(reader)
            if 100 <= status < 200 and status != 101:
                continue  # 100 Continue and friends: the real answer follows
            break
        answer = Answer(status, reason, headers, b"", will_close=False)
        connection = answer.header("Connection").lower()
        keep_alive = (connection != "close" if version == "HTTP/1.1"
                      else connection == "keep-alive")
        if status in (204, 304) or 100 <= status < 200:
            answer.will_close = not keep_alive
            return answer
        if "chunked" in answer.header("Transfer-Encoding").lower():
            answer.body = _chunked(reader)
        else:
            length = _length(answer.header("Content-Length", ""))
            if length is None:
                answer.body = reader.until_closed()
                keep_alive = False
            else:
                if length > MAX_BODY:
                    raise http.client.HTTPException(f"answer body of {length} bytes")
                answer.body = reader.exact(length)
        answer.will_close = not keep_alive or reader.closed
        return answer


def _status_line(line: bytes) -> tuple[str, int, str]:
    text = line.decode("iso-8859-1").rstrip("\r\n")
    version, _, rest = text.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise http.client.BadStatusLine(text)
    return version, int(code), reason.strip()


def _headers(reader: _Reader) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        line = reader.line()
        if line in (b"\r\n", b"\n", b""):
            return headers
        if len(headers) >= MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        name, sep, value = line.decode("iso-8859-1").partition(":")
        if not sep or not name or name != name.strip():
            raise http.client.HTTPException(f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip()))


def _length(raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit():
        raise http.client.HTTPException(f"bad Content-Length {raw[:40]!r}")
    return int(raw)


def _chunked(reader: _Reader) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_line = reader.line()
        if not size_line:
            raise http.client.IncompleteRead(b"".join(parts))
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise http.client.HTTPException(f"bad chunk size {size_line[:40]!r}") from None
        if size == 0:
            _headers(reader)  # trailers, if any, up to the empty line
            return b"".join(parts)
        total += size
        if total > MAX_BODY:
            raise http.client.HTTPException(f"answer body over {MAX_BODY} bytes")
        parts.append(reader.exact(size))
        reader.exact(2)  # the CRLF after each chunk
