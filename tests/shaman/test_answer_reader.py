"""The pipelined connection's answer reader (shaman_addon.shaman.answer_reader) on real
socket pairs, and the upload body both ways: a small file read whole behind its request
head (``read_whole``), a larger one streamed in chunks (``UploadBody``)."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from shaman_addon.errors import LocalFileChanged
from shaman_addon.shaman.answer_reader import MAX_BODY, AnswerReader
from shaman_addon.shaman.messages import Answer
from shaman_addon.shaman.upload_body import UploadBody, read_whole


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    yield ours, theirs
    ours.close()
    theirs.close()


def read_answer(sock: socket.socket) -> Answer:
    """One answer, read by a reader made for it (as for a fresh connection)."""
    return AnswerReader(sock).read()


def _serve(sock: socket.socket, *pieces: bytes, close: bool = False) -> threading.Thread:
    """Send ``pieces`` one by one (separate sends, so the reader must join them)."""

    def run() -> None:
        for piece in pieces:
            sock.sendall(piece)
        if close:
            sock.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_content_length_answer_keeps_the_connection(pair: tuple[socket.socket, socket.socket]
                                                    ) -> None:
    ours, theirs = pair
    t = _serve(theirs, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
               b"Content-Length: 11\r\n\r\n{\"a\": ", b"true}")
    answer = read_answer(ours)
    t.join()
    assert (answer.status, answer.reason, answer.body) == (200, "OK", b'{"a": true}')
    assert answer.header("content-type") == "application/json"
    assert answer.will_close is False


def test_two_answers_in_a_row_on_one_connection(pair: tuple[socket.socket, socket.socket]
                                               ) -> None:
    ours, theirs = pair
    for status in (200, 208):
        t = _serve(theirs, f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        answer = read_answer(ours)
        t.join()
        assert answer.status == status and not answer.will_close


def test_interim_100_continue_is_skipped(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    t = _serve(theirs, b"HTTP/1.1 100 Continue\r\n\r\n",
               b"HTTP/1.1 425 Too Early\r\nContent-Length: 0\r\n\r\n")
    answer = read_answer(ours)
    t.join()
    assert answer.status == 425 and answer.reason == "Too Early"


def test_chunked_body_with_trailer(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    t = _serve(theirs, b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n",
               b"5;ext=1\r\nhello\r\n", b"6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n")
    answer = read_answer(ours)
    t.join()
    assert answer.status == 500 and answer.body == b"hello world" and not answer.will_close


def test_body_until_close_and_connection_close(pair: tuple[socket.socket, socket.socket]
                                              ) -> None:
    ours, theirs = pair
    t = _serve(theirs, b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n<html>",
               b"down</html>", close=True)
    answer = read_answer(ours)
    t.join()
    assert answer.body == b"<html>down</html>" and answer.will_close


def test_http_1_0_closes_unless_keep_alive(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, theirs = pair
    t = _serve(theirs, b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
    answer = read_answer(ours)
    t.join()
    assert answer.body == b"ok" and answer.will_close


def test_no_answer_at_all_is_remote_disconnected(pair: tuple[socket.socket, socket.socket]
                                                 ) -> None:
    ours, theirs = pair
    theirs.shutdown(socket.SHUT_WR)
    with pytest.raises(http.client.RemoteDisconnected):
        read_answer(ours)


@pytest.mark.parametrize("raw, error", [
    (b"SSH-2.0-OpenSSH\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/1.1 2000 Nope\r\n\r\n", http.client.BadStatusLine),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", http.client.HTTPException),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.client.IncompleteRead),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n", http.client.LineTooLong),
    (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1),
     http.client.HTTPException),
])
def test_malformed_answers_raise_http_client_errors(
    pair: tuple[socket.socket, socket.socket], raw: bytes, error: type[Exception]
) -> None:
    ours, theirs = pair
    t = _serve(theirs, raw, close=True)
    with pytest.raises(error):
        read_answer(ours)
    t.join()


def test_bytes_after_the_answer_make_the_connection_unusable(
    pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, theirs = pair
    t = _serve(theirs, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n")
    t.join()
    reader = AnswerReader(ours)
    answer = reader.read()
    # Not the next answer: nothing was asked for it. The pipelined connection sees the
    # leftover and drops the connection before writing anything more on it.
    assert answer.status == 200 and reader.leftover


_OPENED: list[BinaryIO] = []


@pytest.fixture(autouse=True)
def _close_opened() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


def _body(path: Path, size: int, chunk: int = 1 << 20,
          on_bytes: Callable[[int], None] | None = None) -> UploadBody:
    fileobj = open(path, "rb", buffering=0)  # noqa: SIM115  (closed after each test)
    _OPENED.append(fileobj)
    return UploadBody(fileobj, size, path=str(path), chunk_size=chunk, on_bytes=on_bytes)


def test_one_piece_holds_head_and_file(tmp_path: Path) -> None:
    path = tmp_path / "tex.png"
    path.write_bytes(b"\x89PNG" * 100)
    whole = read_whole(str(path), 400, b"HEAD\r\n\r\n")
    assert bytes(whole) == b"HEAD\r\n\r\n" + path.read_bytes()
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert bytes(read_whole(str(empty), 0, b"HEAD")) == b"HEAD"


def test_one_piece_tells_a_grown_or_shrunk_file(tmp_path: Path) -> None:
    path = tmp_path / "grows.bin"
    path.write_bytes(b"x" * 101)
    with pytest.raises(LocalFileChanged, match="larger than the 100 bytes") as info:
        read_whole(str(path), 100, b"H")
    assert info.value.path == str(path)
    with pytest.raises(LocalFileChanged, match="shorter"):
        read_whole(str(path), 102, b"H")
    with pytest.raises(LocalFileChanged, match="Cannot read"):
        read_whole(str(tmp_path / "gone.bin"), 1, b"H")


def test_a_body_larger_than_a_chunk_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"y" * 5000)
    sent: list[int] = []
    body = _body(path, 5000, chunk=4096, on_bytes=sent.append)
    assert b"".join(bytes(c) for c in body) == path.read_bytes()
    assert sent == [4096, 904] and body.complete
