"""A local Shaman server that answers like a real Flamenco Manager (or like its API spec).

Tests and the demo talk to this over real HTTP on loopback, so the client is exercised
against the same statuses, bodies, connection drops and disk layout a farm would give
(see ``data/SHAMAN_PROTOCOL.md``). Standard library only, so it runs anywhere the tests run.

Two answer styles: ``manager`` (what a Manager 3.x really sends: 200 on upload, a
``-xxxx`` suffix for a taken checkout path, 500 for missing files) and ``spec`` (what
the OpenAPI description promises: 204, 409, 424). Fault injection (``Faults``) lets a
test provoke the failures a client must survive; ``Counters`` lets it check what was
actually sent.

It also answers a Manager's job API (version, variables, job types, worker tags,
``/jobs/check``, ``/jobs``, jobs and their tasks): ``manager_jobs.py`` decides those
answers; ``server.jobs`` holds its state and knobs.

Run on its own::

    python tests/shaman_server.py --host 127.0.0.1 --port 0 --storage DIR [--style spec]

It prints ``listening on http://HOST:PORT`` once ready and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import email.parser
import hashlib
import http.client
import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import string
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from manager_jobs import JOB_ENDPOINTS, ManagerJobs
from manager_jobs import route as job_route

log = logging.getLogger("shaman_server")

CHUNK = 1024 * 1024
ENDPOINTS = ("requirements", "file_status", "upload", "create", "configuration",
             *JOB_ENDPOINTS)
STYLES = ("manager", "spec")

# A lingering close after an early answer: how long and how much we discard while the
# client notices the answer, so our FIN arrives before any reset and the answer survives.
_LINGER_SECONDS = 1.0
_LINGER_MAX_BYTES = 256 * CHUNK

_ZEROS = memoryview(bytes(CHUNK))
_HOLE_MIN = 64 * 1024

_SAFE_SHA = re.compile(r"[0-9A-Za-z]{3,128}")
_SAFE_SHAS = re.compile(r"(?:[0-9A-Za-z]{3,128}\0)*")  # _SAFE_SHA, each ended by a NUL
_GO_INT = re.compile(r"[+-]?[0-9]+")
_GO_BOOLS = {
    "1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
    "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False,
}
_ENCODED_WORD = re.compile(r"=\?([^?]+)\?([bBqQ])\?([^?]*)\?=")
_BAD_CHECKOUT_CHARS = set("?*:;{}\\\0")
_DRIVE = re.compile(r"^[A-Za-z]:")


# ---------------------------------------------------------------------------------------
# Small helpers that reproduce a Go server's wording


def go_quote(text: str) -> str:
    """Quote like Go's ``%q`` so messages read exactly as a Manager's do."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_json(value: Any) -> bytes:
    """Encode like Go's ``json.Encoder``: compact, raw UTF-8, HTML-escaped, final newline."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return (text + "\n").encode("utf-8")


def _go_char(ch: str) -> str:
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    return "'" + go_quote(ch)[1:-1] + "'"


def _go_json_decode_error(body: bytes) -> str:
    """What Go's JSON decoder says about a body that is not JSON (first-token cases)."""
    text = body.decode("utf-8", errors="replace").lstrip(" \t\r\n")
    if not text:
        return "unexpected end of JSON input"
    first = text[0]
    literals = {"n": "null", "t": "true", "f": "false"}
    if first in literals:
        word = literals[first]
        for i, expected in enumerate(word):
            if i >= len(text):
                return "unexpected end of JSON input"
            if text[i] != expected:
                return (f"invalid character {_go_char(text[i])} in literal {word} "
                        f"(expecting {_go_char(expected)})")
    if first not in '{["-0123456789ntf':
        return f"invalid character {_go_char(first)} looking for beginning of value"
    try:
        json.loads(text)
    except ValueError as exc:
        return str(exc)
    return "invalid JSON"


def decode_original_filename(raw: str) -> str:
    """Decode ``X-Shaman-Original-Filename``: ASCII as is, or one RFC 2047 encoded-word.

    Raises ValueError for anything else (raw non-ASCII, a broken encoded-word, a charset
    we cannot read), which the upload answers with 400.
    """
    if any(ord(ch) > 0x7E or (ord(ch) < 0x20 and ch != "\t") for ch in raw):
        raise ValueError("not ASCII")
    if "=?" not in raw:
        return raw
    match = _ENCODED_WORD.fullmatch(raw.strip())
    if match is None:
        raise ValueError("not one RFC 2047 encoded-word")
    charset, encoding, payload = match.groups()
    try:
        if encoding in "bB":
            data = base64.b64decode(payload, validate=True)
        else:
            data = re.sub(
                r"=([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), payload.replace("_", " ")
            ).encode("latin-1")
        return data.decode(charset)
    except (binascii.Error, ValueError, LookupError, UnicodeError) as exc:
        raise ValueError(str(exc)) from exc


def _safe_sha(sha: str) -> bool:
    """``_SAFE_SHA.fullmatch`` by string methods (a third of the time, on every file)."""
    return 3 <= len(sha) <= 128 and sha.isascii() and sha.isalnum()


def checkout_path_is_valid(path: str) -> bool:
    """A real Manager's rule, plus a bare ``..`` (which would escape the jobs folder)."""
    if not path or path.startswith("/"):
        return False
    if _BAD_CHECKOUT_CHARS.intersection(path):
        return False
    return not ("../" in path or "/.." in path or path == "..")


def file_path_leaves_checkout(path: str) -> bool:
    """True for a checkout FILE path that could land outside the checkout folder."""
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        return True
    if _DRIVE.match(path):
        return True
    return ".." in path.split("/")


# ---------------------------------------------------------------------------------------
# Counters and faults


class Counters:
    """What the server saw; every read returns a snapshot, safe from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: dict[str, int] = {}
            self._statuses: dict[tuple[str, int], int] = {}
            self._bytes_received = 0
            self._bytes_by_file: dict[tuple[str, int], int] = {}
            self._bytes_drained = 0
            self._requirements_files: list[int] = []
            self._checkouts: list[str] = []
            self._job_checks: list[Any] = []
            self._job_submissions: list[Any] = []

    @property
    def requests(self) -> dict[str, int]:
        with self._lock:
            return dict(self._requests)

    @property
    def statuses(self) -> dict[tuple[str, int], int]:
        with self._lock:
            return dict(self._statuses)

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return self._bytes_received

    @property
    def bytes_received_by_file(self) -> dict[tuple[str, int], int]:
        with self._lock:
            return dict(self._bytes_by_file)

    @property
    def bytes_drained(self) -> int:
        """Bytes discarded unread after an early answer (not part of ``bytes_received``)."""
        with self._lock:
            return self._bytes_drained

    @property
    def requirements_files(self) -> list[int]:
        with self._lock:
            return list(self._requirements_files)

    @property
    def checkouts(self) -> list[str]:
        with self._lock:
            return list(self._checkouts)

    @property
    def job_checks(self) -> list[Any]:
        """Every JSON document ``POST /api/v3/jobs/check`` received, in order."""
        with self._lock:
            return list(self._job_checks)

    @property
    def job_submissions(self) -> list[Any]:
        """Every JSON document ``POST /api/v3/jobs`` received, in order."""
        with self._lock:
            return list(self._job_submissions)

    def as_json(self) -> dict[str, Any]:
        """A JSON-able snapshot, for ``GET /test/counters`` of a separate process."""
        with self._lock:
            return {
                "requests": dict(self._requests),
                "statuses": [[e, s, n] for (e, s), n in self._statuses.items()],
                "bytes_received": self._bytes_received,
                "bytes_received_by_file": [
                    [sha, size, n] for (sha, size), n in self._bytes_by_file.items()
                ],
                "bytes_drained": self._bytes_drained,
                "requirements_files": list(self._requirements_files),
                "checkouts": list(self._checkouts),
                "job_checks": list(self._job_checks),
                "job_submissions": list(self._job_submissions),
            }

    # -- recording, used by the server
    def _request(self, endpoint: str) -> None:
        with self._lock:
            self._requests[endpoint] = self._requests.get(endpoint, 0) + 1

    def _status(self, endpoint: str, status: int) -> None:
        with self._lock:
            key = (endpoint, status)
            self._statuses[key] = self._statuses.get(key, 0) + 1

    def _bytes(self, key: tuple[str, int], n: int) -> None:
        with self._lock:
            self._bytes_received += n
            self._bytes_by_file[key] = self._bytes_by_file.get(key, 0) + n

    def _drained(self, n: int) -> None:
        with self._lock:
            self._bytes_drained += n

    def _requirements(self, count: int) -> None:
        with self._lock:
            self._requirements_files.append(count)

    def _checkout(self, path: str) -> None:
        with self._lock:
            self._checkouts.append(path)

    def _job_check(self, doc: Any) -> None:
        with self._lock:
            self._job_checks.append(doc)

    def _job_submission(self, doc: Any) -> None:
        with self._lock:
            self._job_submissions.append(doc)


class HostileAnswer:
    """An answer a hostile or broken server sends instead of the real one (after reading
    the request): ``body`` as is, or ``size`` bytes of ``fill`` made as they are written
    (a 1 GiB answer is never held), and each byte ``drip_s`` apart when that is set
    (status line and headers included). ``count``: for how many requests (None: all)."""

    def __init__(self, status: int = 200, body: bytes = b"", *, size: int | None = None,
                 fill: bytes = b" ", drip_s: float = 0.0, count: int | None = None,
                 content_type: str = "application/json") -> None:
        self.status = status
        self.body = body
        self.size = len(body) if size is None else size
        self.fill = fill
        self.drip_s = drip_s
        self.count = count
        self.content_type = content_type
        self.sent = 0  # requests it answered

    def pieces(self) -> Iterator[bytes]:
        yield (f"HTTP/1.1 {self.status} {_phrase(self.status)}\r\n"
               f"Content-Type: {self.content_type}\r\n"
               f"Content-Length: {self.size}\r\n\r\n").encode("latin-1")
        if self.body or not self.size:
            yield self.body
            return
        block = (self.fill * (CHUNK // max(1, len(self.fill)) + 1))[:CHUNK]
        left = self.size
        while left > 0:
            yield block[:left]
            left -= len(block[:left])


class Faults:
    """Failures to inject; each applies to the NEXT matching requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.shaman_disabled = False
        self._fail: dict[str, list[tuple[int, str]]] = {}
        self._html: dict[str, list[int]] = {}
        self._drop_after: list[int] = []
        self._early_208 = 0
        self._hang: dict[str, int] = {}
        self._delay: dict[str, float] = {}
        self._uploading: dict[tuple[str, int], int] = {}
        self._lose: set[tuple[str, int]] = set()
        self._hostile: dict[str, HostileAnswer] = {}

    @staticmethod
    def _check(endpoint: str) -> None:
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")

    def fail_next(self, endpoint: str, count: int = 1, status: int = 500,
                  message: str = "injected failure") -> None:
        self._check(endpoint)
        with self._lock:
            self._fail.setdefault(endpoint, []).extend([(status, message)] * count)

    def html_next(self, endpoint: str, count: int = 1, status: int = 502) -> None:
        self._check(endpoint)
        with self._lock:
            self._html.setdefault(endpoint, []).extend([status] * count)

    def drop_upload_after(self, nbytes: int, count: int = 1) -> None:
        with self._lock:
            self._drop_after.extend([nbytes] * count)

    def early_208_and_drop(self, count: int = 1) -> None:
        with self._lock:
            self._early_208 += count

    def hang_next(self, endpoint: str, count: int = 1) -> None:
        self._check(endpoint)
        with self._lock:
            self._hang[endpoint] = self._hang.get(endpoint, 0) + count

    def delay(self, endpoint: str, seconds: float) -> None:
        self._check(endpoint)
        with self._lock:
            if seconds > 0:
                self._delay[endpoint] = seconds
            else:
                self._delay.pop(endpoint, None)

    def report_uploading(self, sha: str, size: int, calls: int) -> None:
        with self._lock:
            if calls > 0:
                self._uploading[(sha, size)] = calls
            else:
                self._uploading.pop((sha, size), None)

    def lose_uploads(self, sha: str, size: int) -> None:
        """Uploads of this content are read whole and answered 200 (204 in the spec's
        style), but never stored: a server that loses a file it said it took."""
        with self._lock:
            self._lose.add((sha, size))

    def hostile(self, endpoint: str, answer: HostileAnswer) -> None:
        """Answer requests to ``endpoint`` with ``answer`` (see HostileAnswer)."""
        self._check(endpoint)
        with self._lock:
            self._hostile[endpoint] = answer

    def reset(self) -> None:
        with self._lock:
            self._hostile.clear()
            self.shaman_disabled = False
            self._fail.clear()
            self._html.clear()
            self._drop_after.clear()
            self._early_208 = 0
            self._hang.clear()
            self._delay.clear()
            self._uploading.clear()
            self._lose.clear()
            released, self._release = self._release, threading.Event()
        released.set()

    # -- consumed by the server
    def _release_all(self) -> None:
        """Let every hanging or delayed answer go (the server is stopping)."""
        self._release.set()

    def _take_hang(self, endpoint: str) -> threading.Event | None:
        with self._lock:
            if self._hang.get(endpoint, 0) > 0:
                self._hang[endpoint] -= 1
                return self._release
        return None

    def _take_hostile(self, endpoint: str) -> tuple[HostileAnswer | None, threading.Event]:
        with self._lock:
            answer = self._hostile.get(endpoint)
            if answer is not None:
                answer.sent += 1
                if answer.count is not None and answer.sent >= answer.count:
                    del self._hostile[endpoint]
            return answer, self._release

    def _take_fail(self, endpoint: str) -> tuple[int, str] | None:
        with self._lock:
            queue = self._fail.get(endpoint)
            return queue.pop(0) if queue else None

    def _take_html(self, endpoint: str) -> int | None:
        with self._lock:
            queue = self._html.get(endpoint)
            return queue.pop(0) if queue else None

    def _take_drop_after(self) -> int | None:
        with self._lock:
            return self._drop_after.pop(0) if self._drop_after else None

    def _take_early_208(self) -> bool:
        with self._lock:
            if self._early_208 > 0:
                self._early_208 -= 1
                return True
        return False

    def _delay_for(self, endpoint: str) -> tuple[float, threading.Event]:
        with self._lock:
            return self._delay.get(endpoint, 0.0), self._release

    def _reported_uploading(self, key: tuple[str, int]) -> bool:
        with self._lock:
            return key in self._uploading

    def _loses(self, key: tuple[str, int]) -> bool:
        with self._lock:
            return key in self._lose

    def _requirements_call_done(self) -> None:
        with self._lock:
            for key in list(self._uploading):
                self._uploading[key] -= 1
                if self._uploading[key] <= 0:
                    del self._uploading[key]


# ---------------------------------------------------------------------------------------
# The content store


class _Upload:
    """One upload in progress; ``superseded`` is set when another one stored the content."""

    __slots__ = ("superseded",)

    def __init__(self) -> None:
        self.superseded = False


class _Store:
    """The on-disk layout of a Manager's Shaman plus the set of uploads in progress."""

    def __init__(self, storage: Path) -> None:
        self.root = storage
        self.stored_dir = storage / "file-store" / "stored"
        self.uploading_dir = storage / "file-store" / "uploading"
        self.jobs_dir = storage / "jobs"
        self._stored = str(self.stored_dir)
        self._uploading = str(self.uploading_dir)
        for folder in (self.stored_dir, self.uploading_dir, self.jobs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._active: dict[tuple[str, int], set[_Upload]] = {}

    def blob_path(self, sha: str, size: int) -> Path:
        return Path(self.blob_str(sha, size))

    def blob_str(self, sha: str, size: int) -> str:
        """``blob_path`` as a plain string: this is on every request's path, keep it cheap."""
        return os.path.join(self._stored, sha[:2], sha[2:], f"{size}.blob")

    def is_stored(self, sha: str, size: int) -> bool:
        if not _SAFE_SHA.fullmatch(sha):
            return False
        return os.path.isfile(self.blob_str(sha, size))

    def unstored(self, files: list[dict[str, Any]], *,
                 first_only: bool = False) -> list[tuple[dict[str, Any], tuple[str, int]]]:
        """(spec, key) of each content of ``files`` not stored, first listing of each key
        only, in list order; ``first_only`` stops at the first one.

        The bulk form of ``is_stored`` (a look at the disk each time, nothing cached): at
        100,000 files the per-file costs are what counts, so the folder is opened once
        and each blob is looked up below it with ``faccessat`` (no stat result built:
        half the time of ``os.stat`` here), the checksum rule is tested on all
        checksums at once (``_SAFE_SHAS``), one by one only when one fails it. Something
        that is not a regular file at a blob path counts as stored here, not in
        ``is_stored``: only the server puts anything there, and always a regular file.
        """
        out: list[tuple[dict[str, Any], tuple[str, int]]] = []
        seen: set[tuple[str, int]] = set()
        access, exists = os.access, os.F_OK
        all_safe = _SAFE_SHAS.fullmatch("\0".join([spec["sha"] for spec in files]) + "\0")
        try:
            fd = os.open(self._stored, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            fd = -1  # no store folder (a test removed it): nothing is stored
        try:
            for spec in files:
                sha, size = spec["sha"], spec["size"]
                if type(size) is not int:
                    size = int(size)
                # Looked up before the duplicate test, so only what is missing is hashed
                # into ``seen`` (a path listed twice is looked up twice, as it is rare).
                if (fd >= 0 and (all_safe or _safe_sha(sha))
                        and access(f"{sha[:2]}/{sha[2:]}/{size}.blob", exists, dir_fd=fd)):
                    continue
                key = (sha, size)
                if key in seen:
                    continue
                seen.add(key)
                out.append((spec, key))
                if first_only:
                    break
        finally:
            if fd >= 0:
                os.close(fd)
        return out

    def is_uploading(self, key: tuple[str, int]) -> bool:
        with self._lock:
            return bool(self._active.get(key))

    def begin(self, key: tuple[str, int], *, refuse_if_busy: bool) -> _Upload | None:
        """Register an upload; None if ``refuse_if_busy`` and someone else is at it."""
        with self._lock:
            uploads = self._active.setdefault(key, set())
            if refuse_if_busy and uploads:
                return None
            upload = _Upload()
            uploads.add(upload)
            return upload

    def end(self, key: tuple[str, int], upload: _Upload) -> None:
        with self._lock:
            uploads = self._active.get(key)
            if uploads is not None:
                uploads.discard(upload)
                if not uploads:
                    del self._active[key]

    def temp_path(self, sha: str, size: int) -> str:
        """A fresh temp file name; flat, so an upload costs no folder creation."""
        return os.path.join(self._uploading, f"{sha}-{size}-{uuid.uuid4().hex}.tmp")

    def commit(self, key: tuple[str, int], upload: _Upload, temp: str) -> None:
        """Move a verified upload into place and cut off other uploads of the same content."""
        final = self.blob_str(*key)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        with self._lock:
            if os.path.isfile(final):
                os.unlink(temp)
            else:
                os.replace(temp, final)
            for other in self._active.get(key, ()):
                if other is not upload:
                    other.superseded = True


# ---------------------------------------------------------------------------------------
# HTTP


class _Dropped(Exception):
    """The connection was dropped on purpose; nothing more is sent."""


_MAX_HEADER_LINE = 65536  # what http.client allows
_MAX_HEADERS = 100
_PLAIN_HEADER = re.compile(r"[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r?\n\Z")

_ROUTE_FILE = re.compile(r"^/api/v3/shaman/files/([^/]+)/([^/]+)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    # -- plumbing
    def log_message(self, format: str, *args: Any) -> None:
        """Request logging off: it costs time and floods test output."""

    def handle_expect_100(self) -> bool:
        """Send 100 Continue only when we start reading the body (as Go does)."""
        self._expect_continue = True
        return True

    def parse_request(self) -> bool:
        """The usual request line and ``Name: value`` headers, parsed without the email
        package, which took a fifth of this server's CPU per small upload (so the
        benchmark's floor measured the server more than the link). Anything unusual
        (another HTTP version, folded or odd header lines) takes the standard path."""
        words = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n").split()
        if len(words) != 3 or words[2] not in ("HTTP/1.1", "HTTP/1.0"):
            return super().parse_request()
        self.command, self.path, self.request_version = words
        self.requestline = " ".join(words)
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE or len(lines) >= _MAX_HEADERS:
                self.send_error(431, "Line too long" if len(line) > _MAX_HEADER_LINE
                                else "Too many headers")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            lines.append(line)
        text = [raw.decode("iso-8859-1") for raw in lines]
        if all(_PLAIN_HEADER.match(t) for t in text):
            headers = http.client.HTTPMessage()
            for t in text:
                name, _, value = t.partition(":")
                headers[name] = value.lstrip(" \t").rstrip("\r\n")
        else:
            headers = email.parser.Parser(_class=http.client.HTTPMessage).parsestr("".join(text))
        self.headers = headers
        connection = headers.get("Connection", "").lower()
        self.close_connection = connection == "close" or (
            self.request_version == "HTTP/1.0" and connection != "keep-alive")
        if (headers.get("Expect", "").lower() == "100-continue"
                and self.request_version == "HTTP/1.1"):
            return self.handle_expect_100()
        return True

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    @property
    def owner(self) -> ShamanServer:
        return self.server.owner

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self._expect_continue = getattr(self, "_expect_continue", False)
        self._endpoint = ""
        self._body_read = False
        path = urllib.parse.urlsplit(self.path).path
        try:
            self._route(method, path)
        except _Dropped:
            self.close_connection = True
        except (ConnectionError, TimeoutError, BrokenPipeError):
            self.close_connection = True
        finally:
            self._expect_continue = False

    def _route(self, method: str, path: str) -> None:
        routes: dict[str, tuple[str, str]] = {
            "/api/v3/shaman/checkout/requirements": ("POST", "requirements"),
            "/api/v3/shaman/checkout/create": ("POST", "create"),
            "/api/v3/configuration": ("GET", "configuration"),
        }
        if path in routes:
            want, endpoint = routes[path]
            if method != want:
                self._not_allowed()
                return
            self._endpoint = endpoint
            handler = {
                "requirements": self._requirements,
                "create": self._create,
                "configuration": self._configuration,
            }[endpoint]
            self._serve(endpoint, handler)
            return
        match = _ROUTE_FILE.match(path)
        if match:
            sha = urllib.parse.unquote(match.group(1))
            size = urllib.parse.unquote(match.group(2))
            if method == "GET":
                self._endpoint = "file_status"
                self._serve("file_status", lambda: self._file_status(sha, size))
            elif method == "POST":
                self._endpoint = "upload"
                self._serve("upload", lambda: self._upload(sha, size))
            else:
                self._not_allowed()
            return
        job = job_route(method, path)
        if job is not None:
            self._serve_job(method, *job)
            return
        if path == "/test/counters" and method == "GET":
            self._send(200, go_json(self.owner.counters.as_json()), "application/json")
            return
        if path == "/test/reset" and method == "POST":
            self._read_body()
            self.owner.counters.reset()
            self.owner.faults.reset()
            self.owner.jobs.reset_knobs()
            self._send(204)
            return
        if path == "/test/fault" and method == "POST":
            self._test_fault()
            return
        self._discard_small_body()
        self._send(404, go_json({"message": "Not Found"}), "application/json")

    def _serve_job(self, method: str, endpoint: str, params: tuple[str, ...]) -> None:
        """The job API (``manager_jobs``): bodies decoded here, answers decided there."""
        if not endpoint:
            self._not_allowed()
            return
        self._endpoint = endpoint

        def answer() -> None:
            jobs = self.owner.jobs
            if jobs.too_old:
                self._send(404, go_json({"message": "Not Found"}), "application/json")
                return
            doc: Any = None
            if method == "POST":
                ok, doc = self._decode_json()
                if not ok:
                    return
            status, reply = jobs.answer(endpoint, params, method, doc)
            if reply is None:
                self._send(status)
            else:
                self._send(status, go_json(reply), "application/json")

        self._serve(endpoint, answer)

    def _answer_hostile(self, answer: HostileAnswer, release: threading.Event) -> None:
        """Read the request whole, then send ``answer`` (dripped if asked; ``release``,
        set by reset() and stop(), cuts a drip short by closing the connection)."""
        self._read_body()
        self.owner.counters._status(self._endpoint, answer.status)
        self.close_connection = True
        for piece in answer.pieces():
            if not answer.drip_s:
                self.wfile.write(piece)
                continue
            for i in range(len(piece)):
                if release.wait(answer.drip_s):
                    self._drop(reset=False)
                self.wfile.write(piece[i:i + 1])

    def _not_allowed(self) -> None:
        self._discard_small_body()
        self._send(405, go_json({"message": "Method Not Allowed"}), "application/json")

    def _serve(self, endpoint: str, handler: Callable[[], None]) -> None:
        """Count the request, apply the faults that come before any real work, go on."""
        owner = self.owner
        owner.counters._request(endpoint)
        faults = owner.faults
        release = faults._take_hang(endpoint)
        if release is not None:
            # Never read the socket, never answer: until reset() or stop().
            release.wait()
            self._drop(reset=False)
        hostile, release = faults._take_hostile(endpoint)
        if hostile is not None:
            self._answer_hostile(hostile, release)
            return
        if endpoint != "upload":
            body = self._read_body()
        fail = faults._take_fail(endpoint)
        if fail is not None:
            status, message = fail
            self._send(status, go_json({"code": status, "message": message}),
                       "application/json", early=endpoint == "upload")
            return
        html_status = faults._take_html(endpoint)
        if html_status is not None:
            phrase = _phrase(html_status)
            page = (f"<html>\r\n<head><title>{html_status} {phrase}</title></head>\r\n<body>\r\n"
                    f"<center><h1>{html_status} {phrase}</h1></center>\r\n"
                    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n").encode()
            self._send(html_status, page, "text/html", early=endpoint == "upload")
            return
        if endpoint == "upload":
            handler()
        else:
            self._body = body
            handler()

    # -- bodies
    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            return None
        return value if value >= 0 else None

    def _continue(self) -> None:
        if self._expect_continue:
            self._expect_continue = False
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _read_body(self) -> bytes:
        length = self._content_length() or 0
        self._body_read = True
        if length == 0:
            return b""
        self._continue()
        data = self.rfile.read(length)
        if len(data) < length:
            raise _Dropped()
        return data

    def _discard_small_body(self) -> None:
        length = self._content_length() or 0
        if length <= CHUNK:
            self._read_body()
        else:
            self.close_connection = True

    # -- answers
    def _send(self, status: int, body: bytes = b"", content_type: str | None = None,
              *, early: bool = False) -> None:
        """Write one whole answer in one go; ``early`` = before the body was read."""
        if self._endpoint:
            seconds, release = self.owner.faults._delay_for(self._endpoint)
            if seconds > 0:
                release.wait(seconds)
        close = early or self.close_connection
        lines = [f"HTTP/1.1 {status} {_phrase(status)}",
                 f"Date: {self.date_time_string()}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        if status != 204:
            lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if self._endpoint:  # counted first, so a client that has the answer sees the count
            self.owner.counters._status(self._endpoint, status)
        self.wfile.write(head + body if body else head)
        if early:
            self._linger()
        if close:
            self.close_connection = True

    def _send_error(self, status: int, message: str, *, early: bool = False) -> None:
        self._send(status, go_json({"code": status, "message": message}), "application/json",
                   early=early)

    def _send_validation(self, message: str, *, early: bool = False) -> None:
        """A 400 from the request validator: ``{"message": ...}`` without a code."""
        self._send(400, go_json({"message": message}), "application/json", early=early)

    def _linger(self) -> None:
        """Half-close, then discard what the client still sends for a short while.

        Closing a socket with unread data makes the kernel send a reset, which can destroy
        the answer we just sent before the client reads it; so, like Go's server, we send
        FIN first and only close once the client stops (or after a second).
        """
        self.close_connection = True
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + _LINGER_SECONDS
        drained = 0
        try:
            # Whatever is already buffered in rfile is discarded along with the socket.
            while drained < _LINGER_MAX_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                data = sock.recv(CHUNK)
                if not data:
                    break
                drained += len(data)
        except OSError:
            pass
        finally:
            self.owner.counters._drained(drained)
        raise _Dropped()

    def _drop(self, *, reset: bool) -> None:
        """Close the connection without an answer; ``reset`` sends RST instead of FIN."""
        self.close_connection = True
        sock = self.connection
        if reset:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for stream in (self.rfile, self.wfile):
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        with contextlib.suppress(OSError):
            sock.close()
        raise _Dropped()

    # -- shared checks
    def _disabled(self) -> bool:
        if self.owner.faults.shaman_disabled:
            self._send_error(503, "shaman server not active", early=self._endpoint == "upload")
            return True
        return False

    def _decode_json(self) -> tuple[bool, Any]:
        """Decode a request body; (False, None) once it has answered the 400 itself."""
        body: bytes = self._body
        prefix = "request body has an error: "
        if not body.strip():
            self._send_validation(prefix + "value is required but missing")
            return False, None
        try:
            return True, json.loads(body)
        except ValueError:
            self._send_validation(prefix + "failed to decode request body: "
                                  + _go_json_decode_error(body))
            return False, None

    def _parse_json(self, schema: str) -> dict[str, Any] | None:
        """Decode and validate a request body; answers 400 itself and returns None."""
        prefix = "request body has an error: "
        ok, doc = self._decode_json()
        if not ok:
            return None
        where = f"doesn't match schema #/components/schemas/{schema}: "
        problem = _schema_problem(doc, schema)
        if problem:
            self._send_validation(prefix + where + problem)
            return None
        return doc

    # -- endpoints
    def _configuration(self) -> None:
        owner = self.owner
        enabled = not owner.faults.shaman_disabled
        location = owner.storage / "jobs" if enabled else owner.storage
        self._send(200, go_json({"isFirstRun": False, "shamanEnabled": enabled,
                                 "storageLocation": str(location)}), "application/json")

    def _requirements(self) -> None:
        doc = self._parse_json("ShamanRequirementsRequest")
        if doc is None or self._disabled():
            return
        owner = self.owner
        files = doc["files"]
        owner.counters._requirements(len(files))
        answer = []
        for spec, key in owner._store.unstored(files):
            busy = owner._store.is_uploading(key) or owner.faults._reported_uploading(key)
            answer.append({"path": spec["path"], "sha": key[0], "size": key[1],
                           "status": "uploading" if busy else "unknown"})
        owner.faults._requirements_call_done()
        self._send(200, go_json({"files": answer}), "application/json")

    def _file_status(self, sha: str, size_raw: str) -> None:
        size = _parse_go_int(size_raw)
        if size is None:
            self._send_validation(
                "Invalid format for parameter filesize: error binding string parameter: "
                f"strconv.ParseInt: parsing {go_quote(size_raw)}: invalid syntax")
            return
        if self._disabled():
            return
        owner = self.owner
        key = (sha, size)
        if owner._store.is_stored(sha, size):
            status = "stored"
        elif owner._store.is_uploading(key) or owner.faults._reported_uploading(key):
            status = "uploading"
        else:
            status = "unknown"
        self._send(200, go_json({"status": status}), "application/json")

    def _upload(self, sha: str, size_raw: str) -> None:
        owner = self.owner
        if owner.faults._take_early_208():
            self._send(208, b"", "text/plain; charset=UTF-8", early=True)
            return
        size = _parse_go_int(size_raw)
        if size is None:
            self._send_validation(
                "Invalid format for parameter filesize: error binding string parameter: "
                f"strconv.ParseInt: parsing {go_quote(size_raw)}: invalid syntax", early=True)
            return
        defer_raw = self.headers.get("X-Shaman-Can-Defer-Upload")
        can_defer = False
        if defer_raw is not None:
            if defer_raw not in _GO_BOOLS:
                self._send_validation(
                    "Invalid format for parameter X-Shaman-Can-Defer-Upload: error binding "
                    f"string parameter: strconv.ParseBool: parsing {go_quote(defer_raw)}: "
                    "invalid syntax", early=True)
                return
            can_defer = _GO_BOOLS[defer_raw]
        if self._disabled():
            return
        if not _SAFE_SHA.fullmatch(sha):
            self._send_error(400, f"invalid checksum {go_quote(sha)}: this test server only "
                             "stores checksums of 3 to 128 letters and digits", early=True)
            return
        store = owner._store
        key = (sha, size)
        drop_after = owner.faults._take_drop_after()
        if drop_after is None and store.is_stored(sha, size):
            # A real Manager answers at once, without reading the body, and closes.
            self._send(208, b"", "text/plain; charset=UTF-8", early=True)
            return
        raw_name = self.headers.get("X-Shaman-Original-Filename")
        if raw_name is not None:
            try:
                name = decode_original_filename(raw_name)
            except ValueError:
                self._send_error(400, "invalid X-Shaman-Original-Filename header: "
                                 + go_quote(raw_name), early=True)
                return
            log.debug("receiving %s (%s, %d bytes)", name, sha, size)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send_error(411, "this server needs a Content-Length on uploads, "
                             "not a chunked body", early=True)
            return
        length = self._content_length()
        if length is None:
            self._send_error(411, "Content-Length header is required to upload a file",
                             early=True)
            return
        busy = can_defer and owner.faults._reported_uploading(key)
        upload = None if busy else store.begin(key, refuse_if_busy=can_defer)
        if upload is None:
            self._send(425, b"", "text/plain; charset=UTF-8", early=True)
            return
        if drop_after is None and store.is_stored(sha, size):
            # Another upload of it finished between the check above and begin(): without
            # this second look the whole body was received again (seen with two clients).
            store.end(key, upload)
            self._send(208, b"", "text/plain; charset=UTF-8", early=True)
            return
        try:
            self._receive(key, upload, length, drop_after)
        finally:
            store.end(key, upload)

    def _receive(self, key: tuple[str, int], upload: _Upload, length: int,
                 drop_after: int | None) -> None:
        """Stream the body to a temp file, hashing as it comes; verify; move into place."""
        owner = self.owner
        store = owner._store
        sha, size = key
        temp = store.temp_path(sha, size)
        digest = hashlib.sha256()
        received = 0
        limit = length if drop_after is None else min(length, drop_after)
        buffer = bytearray(max(1, min(CHUNK, limit)))  # small files, small buffer
        view = memoryview(buffer)
        holes = False
        self._continue()
        self._body_read = True
        ending = ""  # "gone": the client went away; "reset": we cut it off
        problem = ""
        try:
            with open(temp, "wb", buffering=0) as out:
                first = True
                while received < limit:
                    want = min(CHUNK, limit - received)
                    if first:
                        # Body bytes already buffered with the headers: readinto1() would
                        # block for more after copying them, read1() returns them at once.
                        first = False
                        data = self.rfile.read1(want)
                        n = len(data)
                        view[:n] = data
                    else:
                        n = self.rfile.readinto1(view[:want])
                    if not n:
                        ending = "gone"
                        break
                    digest.update(view[:n])
                    if n >= _HOLE_MIN and buffer.startswith(_ZEROS[:n]):
                        # All zeros: leave a hole. A sparse 4 GiB test file then costs the
                        # hashing only, not 4 GiB of disk writes; reading it back is the same.
                        out.seek(n, os.SEEK_CUR)
                        holes = True
                    else:
                        out.write(view[:n])
                    received += n
                    owner.counters._bytes(key, n)
                    if upload.superseded:
                        ending = "reset"  # another upload stored this content first
                        break
                if holes:
                    out.truncate(received)  # a hole at the end still counts in the size
            if not ending and drop_after is not None:
                ending = "reset"
            if not ending:
                actual = digest.hexdigest()
                if received != size:
                    problem = (f"file size mismatched, declared {size} but received "
                               f"{received} bytes")
                elif actual != sha:
                    problem = f"file SHA256 mismatched, declared {sha} but received {actual}"
                elif owner.faults._loses(key):
                    log.debug("losing %s/%d as told (answered as stored)", sha, size)
                else:
                    store.commit(key, upload, temp)
        finally:
            # Cleaned up before the client hears anything, so it never sees a stale temp.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        if ending == "gone":
            raise _Dropped()
        if ending == "reset":
            self._drop(reset=True)
        if problem:
            self._send_error(417, problem)
        elif owner.style == "spec":
            self._send(204)
        else:
            self._send(200)

    def _create(self) -> None:
        doc = self._parse_json("ShamanCheckout")
        if doc is None or self._disabled():
            return
        owner = self.owner
        store = owner._store
        files: list[dict[str, Any]] = doc["files"]
        wanted: str = doc["checkoutPath"]
        if not checkout_path_is_valid(wanted):
            self._send_error(500, f"unexpected error: invalid checkout path {go_quote(wanted)}")
            return
        joined = _joined_paths(files)
        if owner.strict_paths and not _none_leave(joined, len(files)):
            for spec in files:
                if file_path_leaves_checkout(spec["path"]):
                    self._send_error(
                        400, f"checkout file path {go_quote(spec['path'])} would leave the "
                        "checkout folder (absolute, '..', backslash or drive letter); this "
                        "test server refuses it (a real Manager would not)")
                    return
        if store.unstored(files, first_only=True):
            if owner.style == "spec":
                self._send_error(424, "unknown files requested in checkout")
            else:
                self._send_error(500, "unexpected error: unknown files requested in checkout")
            return
        final = self._make_checkout_dir(wanted)
        if final is None:
            return
        checkout_dir = os.path.join(store.jobs_dir, final)
        problem, path = _link_all(store, checkout_dir, files,
                                  all_plain=_all_plain(joined, len(files)))
        if problem:
                # A real Manager removes the half-made checkout before it answers.
            shutil.rmtree(checkout_dir, ignore_errors=True)
            self._send_error(500, f"unexpected error: symlinking {go_quote(path)} "
                             f"to checkout: {problem}")
            return
        owner.counters._checkout(final)
        self._send(200, go_json({"checkoutPath": final}), "application/json")

    def _make_checkout_dir(self, wanted: str) -> str | None:
        """Create the checkout folder; a taken path gets a suffix (manager) or 409 (spec)."""
        owner = self.owner
        jobs = str(owner._store.jobs_dir)
        candidate = wanted
        for _attempt in range(1000):
            target = os.path.normpath(os.path.join(jobs, candidate))
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.mkdir(target)
                return candidate
            except FileExistsError:
                if owner.style == "spec":
                    self._send_error(409, f"checkout path {go_quote(wanted)} already exists")
                    return None
            except OSError as exc:
                self._send_error(500, f"unexpected error: creating checkout {go_quote(wanted)}"
                                 f": {exc.strerror or exc}")
                return None
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=4))
            candidate = f"{wanted}-{suffix}"
        self._send_error(500, f"unexpected error: no free checkout path for {go_quote(wanted)}")
        return None

    def _test_fault(self) -> None:
        """``POST /test/fault`` ``{"call": "fail_next", "kwargs": {...}}`` for a subprocess."""
        try:
            doc = json.loads(self._read_body() or b"{}")
            call = doc["call"]
            kwargs = doc.get("kwargs", {})
            faults = self.owner.faults
            jobs = self.owner.jobs
            if call == "shaman_disabled":
                faults.shaman_disabled = bool(kwargs.get("value", True))
            elif call in ("stale_etags", "too_old"):
                setattr(jobs, call, bool(kwargs.get("value", True)))
            elif call == "bump_etag":
                jobs.bump_etag(kwargs["name"])
            elif call in ("fail_next", "html_next", "drop_upload_after", "early_208_and_drop",
                          "hang_next", "delay", "report_uploading", "lose_uploads", "reset"):
                getattr(faults, call)(**kwargs)
            else:
                raise ValueError(f"unknown fault call {call!r}")
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, go_json({"code": 400, "message": str(exc)}), "application/json")
            return
        self._send(204)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _parse_go_int(raw: str) -> int | None:
    if not _GO_INT.fullmatch(raw):
        return None
    value = int(raw)
    return value if -(2**63) <= value < 2**63 else None


def _schema_problem(doc: Any, schema: str) -> str:
    """The first schema violation, worded like kin-openapi; empty when the body fits."""
    if not isinstance(doc, dict):
        return 'Error at "/": value must be an object'
    required = ["files"] if schema == "ShamanRequirementsRequest" else ["files", "checkoutPath"]
    for name in required:
        if name not in doc:
            return f'Error at "/{name}": property "{name}" is missing'
    if not isinstance(doc["files"], list):
        return 'Error at "/files": value must be an array'
    if "checkoutPath" in required and not isinstance(doc["checkoutPath"], str):
        return 'Error at "/checkoutPath": value must be a string'
    if _files_fit(doc["files"]):
        return ""
    for i, spec in enumerate(doc["files"]):
        if not isinstance(spec, dict):
            return f'Error at "/files/{i}": value must be an object'
        for name in ("sha", "size", "path"):
            if name not in spec:
                return f'Error at "/files/{i}/{name}": property "{name}" is missing'
        for name in ("sha", "path"):
            if not isinstance(spec[name], str):
                return f'Error at "/files/{i}/{name}": value must be a string'
        size = spec["size"]
        if isinstance(size, bool) or not isinstance(size, int | float):
            return f'Error at "/files/{i}/size": value must be an integer'
        if isinstance(size, float) and not size.is_integer():
            return f'Error at "/files/{i}/size": value must be an integer'
    return ""


def _files_fit(files: list[Any]) -> bool:
    """The usual body, accepted in one quick pass: every entry an object with a string
    ``sha`` and ``path`` and an integer ``size`` (JSON decoding makes exact types, and
    ``type(True) is bool``). False sends the body through the general, worded checks."""
    for spec in files:
        if type(spec) is not dict:
            return False
        get = spec.get
        if (type(get("sha")) is not str or type(get("path")) is not str
                or type(get("size")) is not int):
            return False
    return True


LINK_THREADS = 2  # symlinking is kernel time: on ext4 two threads take half the wall time


def _link_all(store: _Store, checkout_dir: str, files: list[dict[str, Any]], *,
              all_plain: bool = False) -> tuple[str, str]:
    """Link every file of a checkout; ('', '') or (error text, path) of the first failure.

    Why it is built this way: on ext4 a symlink to a 64-hex blob path costs ~0.15 ms of
    kernel time, so 3,000 links were the largest single cost of a cold submission on a
    disk store. Folders are made first, in one pass; then the links are made by
    ``LINK_THREADS`` threads (``os.symlink`` releases the GIL), each on a contiguous run
    of the list so links in one folder mostly stay on one thread (one thread when a path
    is listed twice, so the outcome is that of list order). The relative target is
    a per-folder prefix up to the storage root plus the blob's path below it, which is
    what ``os.path.relpath`` gives (the checkout is inside the storage) at a fraction of
    its cost.
    """
    planned, problem, path = _plan_links(store, checkout_dir, files, all_plain)
    if problem:
        return problem, path
    problems: list[tuple[int, str, str]] = []

    def link_run(start: int, stop: int) -> None:
        symlink = os.symlink
        for i in range(start, stop):
            target, link, path = planned[i]
            try:
                symlink(target, link)
            except OSError as exc:
                problem = _link_problem(exc, target, link)
                if problem:
                    problems.append((i, problem, path))
                    return

    # A path listed twice must fail (or pass) the way one thread in list order would.
    threads = LINK_THREADS if len({link for _, link, _ in planned}) == len(planned) else 1
    if len(planned) < 256:
        threads = 1  # a thread costs more than a few hundred links
    step = -(-len(planned) // threads) if planned else 1
    runs = [(k, min(k + step, len(planned))) for k in range(0, len(planned), step)]
    helpers = [threading.Thread(target=link_run, args=run) for run in runs[1:]]
    for t in helpers:
        t.start()
    if runs:
        link_run(*runs[0])
    for t in helpers:
        t.join()
    if problems:
        _, problem, path = min(problems)
        return problem, path
    return "", ""


def _plan_links(store: _Store, checkout_dir: str, files: list[dict[str, Any]],
                all_plain: bool) -> tuple[list[tuple[str, str, str]], str, str]:
    """(target, link, the request's path) of each file, folders made on the way; or the
    error text and path of the first folder that could not be made.

    Each link is the request's path joined and cleaned the way Go's ``filepath.Join``
    does (a leading '/' stays inside); a plain path (no empty, '.' or '..' part) is
    already clean, so it is appended to the cleaned folder without ``normpath``
    (``_is_plain_relative``; a test compares both ways on random paths). Each folder is
    made once, with its relative way up to the storage root computed once: the target
    is that prefix plus the blob's path below the root, which is what
    ``os.path.relpath`` gives (the checkout is inside the storage). ``all_plain``: every
    path is known plain (``_all_plain``), so none is looked at one by one."""
    storage = os.path.dirname(os.path.dirname(store._stored.rstrip("/")))
    below = store._stored[len(storage):]  # "/file-store/stored"
    base = os.path.normpath(checkout_dir)
    up_to_storage: dict[str, str] = {}
    planned: list[tuple[str, str, str]] = []
    for spec in files:
        path = spec["path"]
        if all_plain or _is_plain_relative(path):
            link = base + "/" + path
            parent = link[:link.rindex("/")]
        else:
            link = os.path.normpath(checkout_dir + "/" + path)
            parent = os.path.dirname(link)
        prefix = up_to_storage.get(parent)
        if prefix is None:
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as exc:
                return [], f"mkdir {parent}: {(exc.strerror or str(exc)).lower()}", path
            prefix = up_to_storage[parent] = os.path.relpath(storage, parent) + below
        sha, size = spec["sha"], spec["size"]  # sha checked by _Store.unstored
        if type(size) is not int:
            size = int(size)
        planned.append((f"{prefix}/{sha[:2]}/{sha[2:]}/{size}.blob", link, path))
    return planned, "", ""


def _is_plain_relative(path: str) -> bool:
    """A relative path with no empty, '.' or '..' part: ``normpath`` leaves it as it is."""
    wrapped = f"/{path}/"
    return (path != "" and path[0] != "/" and "//" not in wrapped and "/./" not in wrapped
            and "/../" not in wrapped)


# Whole-list tests on the request's paths joined by NUL (each path also starts and ends
# with one): a handful of substring scans in C instead of Python per path. A NUL inside a
# path would make the joined text lie, so the count of NULs is checked first.
_NON_PLAIN_MARKS = ("\0\0", "\0/", "//", "/\0", "\0./", "/./", "/.\0", "\0.\0",
                    "\0../", "/../", "/..\0", "\0..\0")
_LEAVING_MARKS = ("\0\0", "\0/", "\\", "\0../", "/../", "/..\0", "\0..\0")
_DRIVE_AFTER_NUL = re.compile(r"\0[A-Za-z]:")


def _joined_paths(files: list[dict[str, Any]]) -> str:
    return "\0" + "\0".join([spec["path"] for spec in files]) + "\0"


def _all_plain(joined: str, count: int) -> bool:
    """Is every path of ``_joined_paths`` (``count`` of them) ``_is_plain_relative``?"""
    return (joined.count("\0") == count + 1
            and not any(mark in joined for mark in _NON_PLAIN_MARKS))


def _none_leave(joined: str, count: int) -> bool:
    """True when no path of ``_joined_paths`` is ``file_path_leaves_checkout``; False
    when one may be (the paths are then looked at one by one)."""
    if count == 0:
        return True
    return (joined.count("\0") == count + 1
            and not any(mark in joined for mark in _LEAVING_MARKS)
            and _DRIVE_AFTER_NUL.search(joined) is None)


def _link_problem(exc: OSError, target: str, link: str) -> str:
    """The error text of a failed ``os.symlink(target, link)``; '' when the link is
    already there as asked (the same path listed twice with the same content)."""
    if isinstance(exc, FileExistsError):
        if os.path.islink(link) and os.readlink(link) == target:
            return ""
        return f"symlink {target} {link}: file exists"
    return f"symlink {target} {link}: {(exc.strerror or str(exc)).lower()}"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], owner: ShamanServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conn_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_all(self) -> None:
        """Cut every open connection so a stop looks like a dead server to clients."""
        with self._conn_lock:
            conns = list(self._connections)
            self._connections.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error serving %s", client_address, exc_info=True)


# ---------------------------------------------------------------------------------------
# Public face


class ShamanServer:
    """The local Shaman server: in-process on a daemon thread, or via ``main()``."""

    def __init__(self, storage: Path, *, host: str = "127.0.0.1", port: int = 0,
                 style: str = "manager", strict_paths: bool = True) -> None:
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
        self.storage = Path(storage)
        self.host = host
        self.port = port
        self.style = style
        self.strict_paths = strict_paths
        self.counters = Counters()
        self.faults = Faults()
        self.url = ""
        self._store = _Store(self.storage)
        self.jobs = ManagerJobs(self)  # the job API: job types, worker tags, jobs
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ShamanServer:
        httpd = _HTTPServer((self.host, self.port), self)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
            name=f"shaman-server-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd = self._httpd
        if httpd is None:
            return
        self._httpd = None
        self.faults._release_all()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> ShamanServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stored_path(self, sha: str, size: int) -> Path:
        return self._store.blob_path(sha, size)

    def is_stored(self, sha: str, size: int) -> bool:
        return self._store.is_stored(sha, size)

    def checkout_dir(self, checkout_path: str) -> Path:
        """Where a checkout lives on disk (``jobs/<checkoutPath>``)."""
        return self.storage / "jobs" / checkout_path


@contextlib.contextmanager
def running(storage: Path, **kwargs: Any) -> Iterator[ShamanServer]:
    """``with running(dir) as server:`` for scripts that want a server for a while."""
    server = ShamanServer(storage, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local Shaman server for tests and demos.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--storage", type=Path, required=True,
                        help="folder that holds file-store/ and jobs/")
    parser.add_argument("--style", choices=STYLES, default="manager")
    parser.add_argument("--no-strict-paths", action="store_true",
                        help="accept checkout file paths that leave the checkout folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = ShamanServer(args.storage, host=args.host, port=args.port, style=args.style,
                          strict_paths=not args.no_strict_paths)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    sys.stdout.write(f"listening on {server.url}\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
