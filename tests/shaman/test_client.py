"""The Shaman client over real HTTP on loopback, against the local server in both answer
styles (and a few canned servers for what a Shaman server never sends).

Back-off goes through an injected ``sleep`` that records the delays, so retry tests do
not wait; ordering between threads is by events and server counters, never by timing.
"""

from __future__ import annotations

import contextlib
import email.header
import hashlib
import json
import os
import re
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3

from shaman_addon.errors import (
    Cancelled,
    CheckoutAnswerLost,
    CheckoutExists,
    ChecksumMismatch,
    ConfigError,
    InvalidCheckoutPath,
    LocalFileChanged,
    MissingFilesAtCheckout,
    NotAShamanServer,
    ServerError,
    ServerTimeout,
    ServerUnreachable,
    ShamanDisabled,
    UploadReset,
)
from shaman_addon.shaman.client import (
    ClientSettings,
    FileSpec,
    ShamanClient,
    UploadResult,
    normalise_base_url,
    original_filename_header,
)
from shaman_addon.shaman.server_errors import error_from_response, read_error_body

from shaman_server import ShamanServer, decode_original_filename

local_only = pytest.mark.local_server_only


# --- helpers ---------------------------------------------------------------------------


class Sleeps:
    """An injected ``sleep``: records each back-off instead of waiting."""

    def __init__(self, hook: Callable[[float], None] | None = None) -> None:
        self.delays: list[float] = []
        self.hook = hook

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.hook is not None:
            self.hook(seconds)


def make_client(url: str, sleeps: Sleeps | None = None, **settings: Any) -> ShamanClient:
    return ShamanClient(url, ClientSettings(**settings), sleep=sleeps or Sleeps())


@pytest.fixture
def files(tmp_path: Path) -> Callable[..., tuple[Path, FileSpec]]:
    """``make(size, name=..., path=...)``: a file of random bytes and its FileSpec."""
    counter = iter(range(10**6))

    def make(size: int, name: str | None = None, path: str | None = None
             ) -> tuple[Path, FileSpec]:
        name = name or f"file-{next(counter)}.bin"
        local = tmp_path / "local" / name
        local.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        local.write_bytes(data)
        return local, FileSpec(hashlib.sha256(data).hexdigest(), size, path or f"in/{name}")

    return make


def requests_to(server: ShamanServer, endpoint: str) -> int:
    return server.counters.requests.get(endpoint, 0)


class Canned:
    """A plain HTTP server answering every request with one fixed answer, and recording
    what it got: for what a Shaman server never does (another web app, a proxy)."""

    def __init__(self, status: int = 200, body: bytes = b"", content_type: str = "text/html",
                 *, read_body: bool = True, drop: bool = False, reset_after: bool = False,
                 tls: ssl.SSLContext | None = None) -> None:
        self.status, self.body, self.content_type = status, body, content_type
        self.read_body, self.drop, self.reset_after = read_body, drop, reset_after
        self.seen: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                got = len(self.rfile.read(length)) if (outer.read_body and length) else 0
                outer.seen.append({"method": self.command, "path": self.path,
                                   "headers": dict(self.headers.items()), "body_bytes": got})
                if outer.drop:  # read the request, then hang up without an answer
                    self.close_connection = True
                    return
                self.send_response(outer.status)
                self.send_header("Content-Type", outer.content_type)
                self.send_header("Content-Length", str(len(outer.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(outer.body)
                self.wfile.flush()
                self.close_connection = True
                if outer.reset_after:  # close with the body unread: the kernel sends RST
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))

            def do_GET(self) -> None:
                self._any()

            def do_POST(self) -> None:
                self._any()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Canned:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- pure pieces -----------------------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [
    ("http://manager:8080", "http://manager:8080"),
    ("  http://manager:8080/  ", "http://manager:8080"),
    ("HTTPS://farm.example.com///", "https://farm.example.com"),
    ("http://host/flamenco/", "http://host/flamenco"),
    ("http://[::1]:8080/", "http://[::1]:8080"),
])
def test_normalise_base_url(given: str, expected: str) -> None:
    assert normalise_base_url(given) == expected


@pytest.mark.parametrize(("given", "words"), [
    ("", "empty"),
    ("   ", "empty"),
    ("manager:8080", "'http://manager:8080'"),
    ("ftp://manager", "must start with http:// or https://"),
    ("http://", "no host"),
    ("http://host:port", "not a valid URL"),
])
def test_normalise_base_url_refuses_with_the_value(given: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        normalise_base_url(given)
    assert words in str(info.value)
    if given.strip():
        assert given.strip() in str(info.value)


def test_client_refuses_a_bad_url_and_a_missing_ca_bundle(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="localhost:8080"):
        ShamanClient("localhost:8080")
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match=r"nope\.pem"):
        ShamanClient("http://127.0.0.1:1", ClientSettings(ca_bundle=missing))


@pytest.mark.parametrize(("body", "ctype", "message", "is_json"), [
    (b'{"code": 500, "message": "disk full"}', "application/json", "disk full", True),
    (b'{"message": "bad body"}\n', "application/json", "bad body", True),
    (b'{"code": 500}', "application/json", "", True),
    (b'{"message": {"nested": 1}}', "application/json", '{"nested": 1}', True),
    (b"<html><head><title>502 Bad Gateway</title></head></html>", "text/html", "", False),
    (b"\xff\xfe not utf-8 {", "application/json", "", False),
    (b"", "", "", False),
    (b"[1, 2]", "application/json", "", False),
])
def test_error_bodies_of_any_shape_are_read_without_crashing(
        body: bytes, ctype: str, message: str, is_json: bool) -> None:
    parsed = read_error_body(body, ctype)
    assert parsed.message == message
    assert parsed.is_json is is_json
    assert parsed.describe()


def test_html_error_page_is_described_by_its_title() -> None:
    page = b"<html><head><title>413 Request Entity Too Large</title></head><body>x</body>"
    body = read_error_body(page, "text/html")
    assert body.is_html and body.text == "413 Request Entity Too Large"
    err = error_from_response("Uploading f", "http://m/x", 413, "Too Large", body)
    assert type(err) is ServerError
    assert "http://m/x" in str(err) and "413 Request Entity Too Large" in str(err)


@pytest.mark.parametrize(("status", "message", "cls"), [
    (503, "shaman server not active", ShamanDisabled),
    (404, "Not Found", NotAShamanServer),
    (417, "file SHA256 mismatched", ChecksumMismatch),
    (424, "unknown files requested in checkout", MissingFilesAtCheckout),
    (500, "unexpected error: unknown files requested in checkout", MissingFilesAtCheckout),
    (500, 'unexpected error: invalid checkout path "shot:010"', InvalidCheckoutPath),
    (409, "checkout already exists", CheckoutExists),
    (500, "unexpected error: symlinking", ServerError),
    (400, "request body has an error", ServerError),
    (503, "overloaded", ServerError),
])
def test_error_mapping_by_status_and_message(status: int, message: str, cls: type) -> None:
    body = read_error_body(json.dumps({"code": status, "message": message}).encode())
    err = error_from_response("Doing x", "http://m:8080/api/v3/y", status, "R", body)
    assert type(err) is cls
    assert "http://m:8080/api/v3/y" in str(err)
    if cls is not NotAShamanServer:
        assert message in str(err)
        assert err.server_message == message  # type: ignore[attr-defined]


def test_original_filename_header_ascii_is_sent_as_is() -> None:
    assert original_filename_header("textures/wood.png") == "wood.png"
    assert original_filename_header("C:\\proj\\a b.blend") == "a b.blend"


@pytest.mark.parametrize("name", ["Ünïcødé texture ☃.png", "日本語のファイル.exr", "tab\tname.txt",
                                  "=?utf-8?b?looks-encoded?=.png"])
def test_original_filename_header_non_ascii_is_one_encoded_word(name: str) -> None:
    value = original_filename_header(name)
    assert value.startswith("=?utf-8?b?") and value.endswith("?=")
    assert value.isascii() and "\r" not in value and "\n" not in value and " " not in value
    assert decode_original_filename(value) == name
    decoded, charset = email.header.decode_header(value)[0]
    assert charset == "utf-8" and decoded.decode("utf-8") == name


def test_original_filename_header_very_long_name_stays_one_line() -> None:
    name = "ß" * 1000 + ".png"
    value = original_filename_header(name)
    assert "\r" not in value and "\n" not in value
    assert re.fullmatch(r"=\?utf-8\?b\?[A-Za-z0-9+/]+=*\?=", value) and len(value) < 400
    decoded = decode_original_filename(value)
    assert name.startswith(decoded) and len(decoded.encode()) <= 255
    ascii_name = "a" * 5000
    assert original_filename_header(ascii_name) == "a" * 255


# --- calls that work, both styles ------------------------------------------------------


def test_configuration_and_check(any_style_server: Any) -> None:
    with make_client(any_style_server.url + "/") as client:
        config = client.configuration()
        assert config.shaman_enabled is True
        assert isinstance(config.storage_location, str)
        check = client.check()
    assert check.ok and check.reachable and check.is_manager and check.shaman_enabled
    assert any_style_server.url in check.message


def test_requirements_upload_checkout_round_trip(any_style_server: Any, files: Any) -> None:
    a_path, a = files(300_000, "a.png", "textures/a.png")
    b_path, b = files(12, "b.txt", "b.txt")
    a_again = FileSpec(a.sha, a.size, "textures/copy-of-a.png")
    with make_client(any_style_server.url) as client:
        needed = client.requirements([a, b, a_again])
        # one answer per distinct content, the first path of it
        assert sorted((r.sha, r.size, r.path, r.status) for r in needed) == sorted(
            [(a.sha, a.size, "textures/a.png", "unknown"), (b.sha, b.size, "b.txt", "unknown")])
        assert client.file_status(a.sha, a.size) == "unknown"
        progress: list[int] = []
        assert client.upload(a.sha, a.size, a_path, on_bytes=progress.append) \
            is UploadResult.STORED
        assert sum(progress) == a.size
        assert client.upload(b.sha, b.size, b_path) is UploadResult.STORED
        assert client.file_status(a.sha, a.size) == "stored"
        assert client.requirements([a, b, a_again]) == []
        assert any_style_server.is_stored(a.sha, a.size)
        assert any_style_server.stored_path(a.sha, a.size).read_bytes() == a_path.read_bytes()
        made = client.create_checkout([a, b, a_again], "shots/sh010/job-1")
        assert made == "shots/sh010/job-1"
        target = any_style_server.checkout_dir(made) / "textures" / "copy-of-a.png"
        assert target.is_symlink() and target.read_bytes() == a_path.read_bytes()


def test_empty_file_is_stored(any_style_server: Any, files: Any) -> None:
    path, spec = files(0, "empty.txt")
    with make_client(any_style_server.url) as client:
        assert client.upload(spec.sha, 0, path) is UploadResult.STORED
        assert client.file_status(spec.sha, 0) == "stored"


@local_only
@pytest.mark.local_server_only
def test_success_status_per_style(any_style_server: ShamanServer, files: Any) -> None:
    path, spec = files(1000)
    with make_client(any_style_server.url) as client:
        assert client.upload(spec.sha, spec.size, path) is UploadResult.STORED
    expected = 204 if any_style_server.style == "spec" else 200
    # the server counts an answer just after sending it
    _wait_for(lambda: any_style_server.counters.statuses.get(("upload", expected)) == 1,
              f"the server counted its {expected}")


@local_only
@pytest.mark.local_server_only
def test_stored_content_comes_back_early_as_already_known(
        any_style_server: ShamanServer, files: Any) -> None:
    size = 32 * 1024 * 1024
    path, spec = files(size)
    with make_client(any_style_server.url, chunk_size=256 * 1024) as client:
        assert client.upload(spec.sha, size, path) is UploadResult.STORED
        received = any_style_server.counters.bytes_received
        progress: list[int] = []
        assert client.upload(spec.sha, size, path, on_bytes=progress.append) \
            is UploadResult.ALREADY_KNOWN
        # the client stopped sending once the answer was there
        assert sum(progress) < size
        assert any_style_server.counters.bytes_received == received
        # and the client still works afterwards (a fresh connection, not the broken one)
        assert client.file_status(spec.sha, size) == "stored"
        assert client.requirements([spec]) == []


@local_only
@pytest.mark.local_server_only
def test_early_208_and_drop_is_already_known(any_style_server: ShamanServer,
                                             files: Any) -> None:
    path, spec = files(8 * 1024 * 1024)
    any_style_server.faults.early_208_and_drop()
    with make_client(any_style_server.url) as client:
        assert client.upload(spec.sha, spec.size, path) is UploadResult.ALREADY_KNOWN
        # 208 is not proof: the content is not there, requirements says so
        assert [r.sha for r in client.requirements([spec])] == [spec.sha]
        assert client.upload(spec.sha, spec.size, path) is UploadResult.STORED
    assert any_style_server.counters.requests["upload"] == 2


def test_early_answer_then_reset_is_known_or_reset_never_a_hang(files: Any) -> None:
    """A server that answers 208 without reading and closes hard (RST, as a Go server may):
    the status is read when it survived, else the caller gets UploadReset to go and ask."""
    path, spec = files(16 * 1024 * 1024)
    with Canned(208, b"", "text/plain", read_body=False, reset_after=True) as server, \
            make_client(server.url) as client:
        for _ in range(3):
            try:
                outcome: object = client.upload(spec.sha, spec.size, path)
            except UploadReset as exc:
                outcome = exc
                assert server.url in str(exc)
            assert outcome is UploadResult.ALREADY_KNOWN or isinstance(outcome, UploadReset)
        assert len(server.seen) == 3


@local_only
@pytest.mark.local_server_only
def test_defer_header_gets_425_and_without_it_the_upload_goes_on(
        any_style_server: ShamanServer, files: Any) -> None:
    path, spec = files(5000)
    any_style_server.faults.report_uploading(spec.sha, spec.size, calls=5)
    with make_client(any_style_server.url) as client:
        assert client.requirements([spec])[0].status == "uploading"
        assert client.file_status(spec.sha, spec.size) == "uploading"
        assert client.upload(spec.sha, spec.size, path) is UploadResult.DEFERRED
        assert client.upload(spec.sha, spec.size, path, can_defer=False) is UploadResult.STORED
    assert any_style_server.counters.statuses[("upload", 425)] == 1


def test_upload_headers_on_the_wire(files: Any) -> None:
    path, spec = files(70_000, "naïve file.png")
    with Canned(204, b"", "text/plain") as canned, make_client(canned.url) as client:
        assert client.upload(spec.sha, spec.size, path) is UploadResult.STORED
        client.upload(spec.sha, spec.size, path, can_defer=False, original_filename="plain.png")
    first, second = canned.seen
    assert first["method"] == "POST"
    assert first["path"] == f"/api/v3/shaman/files/{spec.sha}/{spec.size}"
    headers = {k.lower(): v for k, v in first["headers"].items()}
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == str(spec.size)
    assert "transfer-encoding" not in headers
    assert headers["x-shaman-can-defer-upload"] == "true"
    assert decode_original_filename(headers["x-shaman-original-filename"]) == "naïve file.png"
    assert first["body_bytes"] == spec.size
    second_headers = {k.lower(): v for k, v in second["headers"].items()}
    assert "x-shaman-can-defer-upload" not in second_headers
    assert second_headers["x-shaman-original-filename"] == "plain.png"


@local_only
@pytest.mark.parametrize("name", ["Ünïcødé texture ☃.png", "ж" * 600 + ".exr", "plain.tif"])
@pytest.mark.local_server_only
def test_server_accepts_the_original_filename_header(shaman_server: ShamanServer, files: Any,
                                                     name: str) -> None:
    path, spec = files(100, "x.bin")
    with make_client(shaman_server.url) as client:
        assert client.upload(spec.sha, spec.size, path, original_filename=name) \
            is UploadResult.STORED
    assert shaman_server.counters.statuses.get(("upload", 400)) is None


# --- checkout answers per style ---------------------------------------------------------


@local_only
def test_existing_checkout_path_per_style(any_style_server: ShamanServer, files: Any) -> None:
    path, spec = files(10)
    with make_client(any_style_server.url) as client:
        client.upload(spec.sha, spec.size, path)
        assert client.create_checkout([spec], "job") == "job"
        if any_style_server.style == "spec":
            with pytest.raises(CheckoutExists) as info:
                client.create_checkout([spec], "job")
            assert any_style_server.url in str(info.value)
        else:
            again = client.create_checkout([spec], "job")
            assert again.startswith("job-") and len(again) == len("job-") + 4
            assert any_style_server.checkout_dir(again).is_dir()


@local_only
@pytest.mark.local_server_only
def test_missing_files_at_checkout_per_style(any_style_server: ShamanServer,
                                             files: Any) -> None:
    _, spec = files(10)
    with make_client(any_style_server.url) as client, \
            pytest.raises(MissingFilesAtCheckout) as info:
        client.create_checkout([spec], "job-missing")
    assert "unknown files requested in checkout" in str(info.value)
    assert "/api/v3/shaman/checkout/create" in str(info.value)
    assert any_style_server.counters.requests["create"] == 1


@local_only
@pytest.mark.parametrize("bad", ["shot:010", "/abs", "x/../../y", ""])
@pytest.mark.local_server_only
def test_invalid_checkout_path(any_style_server: ShamanServer, bad: str) -> None:
    with make_client(any_style_server.url) as client, \
            pytest.raises(InvalidCheckoutPath) as info:
        client.create_checkout([], bad)
    assert "invalid checkout path" in str(info.value)
    assert any_style_server.url in str(info.value)
    assert any_style_server.counters.requests["create"] == 1  # never retried


@local_only
@pytest.mark.parametrize("bad_path", ["../escape.png", "/etc/passwd", "a/../../b", "C:/x.png",
                                      "tex\\a.png", "a//b", ""])
def test_client_never_sends_a_file_path_that_leaves_the_checkout(
        shaman_server_factory: Any, bad_path: str) -> None:
    server = shaman_server_factory(strict_paths=False)
    spec = FileSpec("0" * 64, 1, bad_path)
    with make_client(server.url) as client:
        with pytest.raises(ConfigError):
            client.create_checkout([spec], "job")
        with pytest.raises(ConfigError):
            client.requirements([spec])
    assert server.counters.requests == {}


@local_only
@pytest.mark.local_server_only
def test_upper_case_checksum_is_refused_before_sending(shaman_server: ShamanServer) -> None:
    spec = FileSpec("A" * 64, 1, "a.txt")
    with make_client(shaman_server.url) as client, pytest.raises(ConfigError, match="AAAA"):
        client.requirements([spec])
    assert shaman_server.counters.requests == {}


# --- errors ------------------------------------------------------------------------------


@local_only
@pytest.mark.local_server_only
def test_checksum_mismatch_is_417_and_not_retried(any_style_server: ShamanServer,
                                                  files: Any) -> None:
    path, spec = files(4096)
    wrong = hashlib.sha256(b"something else").hexdigest()
    sleeps = Sleeps()
    with make_client(any_style_server.url, sleeps) as client, \
            pytest.raises(ChecksumMismatch) as info:
        client.upload(wrong, spec.size, path)
    assert "SHA256 mismatched" in str(info.value) and wrong in str(info.value)
    assert info.value.status == 417
    assert any_style_server.counters.requests["upload"] == 1 and sleeps.delays == []


def test_local_file_changed_names_the_file(tmp_path: Path, files: Any) -> None:
    path, spec = files(100)
    with make_client("http://127.0.0.1:9") as client:
        with pytest.raises(LocalFileChanged) as info:
            client.upload(spec.sha, spec.size + 1, path)
        assert str(path) in str(info.value) and info.value.path == str(path)
        gone = tmp_path / "gone.bin"
        with pytest.raises(LocalFileChanged, match=r"gone\.bin"):
            client.upload(spec.sha, spec.size, gone)


@local_only
@pytest.mark.local_server_only
def test_shaman_disabled(any_style_server: ShamanServer, files: Any) -> None:
    path, spec = files(10)
    any_style_server.faults.shaman_disabled = True
    sleeps = Sleeps()
    with make_client(any_style_server.url, sleeps) as client:
        check = client.check()
        assert not check.ok and check.reachable and check.is_manager
        assert not check.shaman_enabled and "without Shaman" in check.message
        assert client.configuration().shaman_enabled is False
        for call in (lambda: client.requirements([spec]),
                     lambda: client.file_status(spec.sha, spec.size),
                     lambda: client.upload(spec.sha, spec.size, path),
                     lambda: client.create_checkout([spec], "job")):
            with pytest.raises(ShamanDisabled) as info:
                call()
            assert "shaman server not active" in str(info.value)
            assert any_style_server.url in str(info.value)
    assert sleeps.delays == []  # never retried
    counts = any_style_server.counters.requests
    assert [counts[e] for e in ("requirements", "file_status", "upload", "create")] == [1] * 4


@local_only
@pytest.mark.local_server_only
def test_check_says_shaman_is_off_even_if_configuration_claims_it_on(
        shaman_server: ShamanServer) -> None:
    # configuration answers first; then Shaman itself is switched off
    shaman_server.faults.fail_next("file_status", status=503,
                                   message="shaman server not active")
    with make_client(shaman_server.url) as client:
        check = client.check()
    assert not check.ok and check.is_manager and not check.shaman_enabled


def test_unreachable_server_named_in_the_error_and_in_check() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    sleeps = Sleeps()
    with make_client(url, sleeps) as client:
        with pytest.raises(ServerUnreachable) as info:
            client.requirements([])
        assert url in str(info.value) and "connection refused" in str(info.value)
        assert "gave up after 4 attempts" in str(info.value)
        assert sleeps.delays == [0.25, 0.5, 1.0]
        check = client.check()
    assert not check.ok and not check.reachable and url in check.message


def test_unknown_host_is_named() -> None:
    with make_client("http://shaman-host.invalid:8080", max_attempts=1) as client, \
            pytest.raises(ServerUnreachable) as info:
        client.configuration()
    assert "shaman-host.invalid" in str(info.value)


@pytest.mark.parametrize(("status", "body", "ctype"), [
    (200, b"<html><title>Welcome to nginx!</title></html>", "text/html"),
    (200, b'{"hello": "world"}', "application/json"),
    (200, b"[]", "application/json"),
    (404, b"<html><title>404 Not Found</title></html>", "text/html"),
    (500, b"<html><title>Internal Server Error</title></html>", "text/html"),
])
def test_another_web_server_is_not_a_shaman_server(status: int, body: bytes,
                                                   ctype: str) -> None:
    with Canned(status, body, ctype) as canned, make_client(canned.url, max_attempts=1) \
            as client:
        with pytest.raises(NotAShamanServer) as info:
            client.configuration()
        assert canned.url in str(info.value)
        with pytest.raises(NotAShamanServer):
            client.requirements([])
        with pytest.raises(NotAShamanServer):
            client.file_status("0" * 64, 1)
        check = client.check()
    assert not check.ok and check.reachable and not check.is_manager
    assert canned.url in check.message


@local_only
def test_wrong_path_prefix_gets_404_not_a_shaman_server(shaman_server: ShamanServer) -> None:
    with make_client(shaman_server.url + "/flamenco") as client, \
            pytest.raises(NotAShamanServer) as info:
        client.requirements([])
    assert info.value.status == 404 and "/flamenco/api/v3" in str(info.value)


@local_only
@pytest.mark.local_server_only
def test_html_error_pages_are_clean_errors(shaman_server: ShamanServer, files: Any) -> None:
    path, spec = files(2 * 1024 * 1024)
    shaman_server.faults.html_next("upload", status=413)
    sleeps = Sleeps()
    with make_client(shaman_server.url, sleeps) as client:
        with pytest.raises(ServerError) as info:
            client.upload(spec.sha, spec.size, path)
        assert info.value.status == 413 and "413 Request Entity Too Large" in str(info.value)
        assert "too large" in str(info.value)
        shaman_server.faults.html_next("requirements", count=4, status=502)
        with pytest.raises(ServerError) as info:
            client.requirements([spec])
        assert info.value.status == 502 and "HTML page" in str(info.value)
        assert shaman_server.url in str(info.value)
    assert shaman_server.counters.requests == {"upload": 1, "requirements": 4}
    assert sleeps.delays == [0.25, 0.5, 1.0]


# --- retries per endpoint ----------------------------------------------------------------


@local_only
@pytest.mark.parametrize("endpoint", ["requirements", "file_status", "configuration"])
@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.local_server_only
def test_read_calls_retry_gateway_errors(shaman_server: ShamanServer, endpoint: str,
                                         status: int) -> None:
    shaman_server.faults.fail_next(endpoint, count=2, status=status, message="try later")
    sleeps = Sleeps()
    with make_client(shaman_server.url, sleeps) as client:
        call = {"requirements": lambda: client.requirements([]),
                "file_status": lambda: client.file_status("0" * 64, 3),
                "configuration": client.configuration}[endpoint]
        call()
    assert shaman_server.counters.requests[endpoint] == 3
    assert sleeps.delays == [0.25, 0.5]


@local_only
@pytest.mark.parametrize("endpoint", ["requirements", "file_status"])
@pytest.mark.parametrize("status", [400, 500])
@pytest.mark.local_server_only
def test_read_calls_never_retry_400_or_500(shaman_server: ShamanServer, endpoint: str,
                                           status: int) -> None:
    shaman_server.faults.fail_next(endpoint, count=3, status=status, message="no good here")
    sleeps = Sleeps()
    with make_client(shaman_server.url, sleeps) as client, pytest.raises(ServerError) as info:
        if endpoint == "requirements":
            client.requirements([])
        else:
            client.file_status("0" * 64, 3)
    assert '"no good here"' in str(info.value) and shaman_server.url in str(info.value)
    assert info.value.status == status and info.value.server_message == "no good here"
    assert shaman_server.counters.requests[endpoint] == 1 and sleeps.delays == []


@local_only
@pytest.mark.local_server_only
def test_retries_stop_at_max_attempts_with_capped_backoff(shaman_server: ShamanServer) -> None:
    shaman_server.faults.fail_next("requirements", count=20, status=504, message="gateway")
    sleeps = Sleeps()
    with make_client(shaman_server.url, sleeps, max_attempts=8, backoff_s=1.0) as client, \
            pytest.raises(ServerError, match="gave up after 8 attempts"):
        client.requirements([])
    assert shaman_server.counters.requests["requirements"] == 8
    assert sleeps.delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


@local_only
@pytest.mark.local_server_only
def test_read_timeout_is_retried_then_named(shaman_server: ShamanServer) -> None:
    shaman_server.faults.delay("file_status", 5.0)
    sleeps = Sleeps()
    with make_client(shaman_server.url, sleeps, read_timeout=0.2, max_attempts=2) as client, \
            pytest.raises(ServerTimeout) as info:
        client.file_status("0" * 64, 1)
    assert "0.2 s" in str(info.value) and shaman_server.url in str(info.value)
    assert shaman_server.counters.requests["file_status"] == 2 and len(sleeps.delays) == 1
    shaman_server.faults.reset()


@local_only
@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.local_server_only
def test_upload_retries_server_errors(any_style_server: ShamanServer, files: Any,
                                      status: int) -> None:
    path, spec = files(3 * 1024 * 1024)
    any_style_server.faults.fail_next("upload", count=2, status=status, message="hiccup")
    sleeps = Sleeps()
    progress: list[int] = []
    with make_client(any_style_server.url, sleeps) as client:
        assert client.upload(spec.sha, spec.size, path, on_bytes=progress.append) \
            is UploadResult.STORED
    assert any_style_server.counters.requests["upload"] == 3
    assert sleeps.delays == [0.25, 0.5]
    assert any_style_server.is_stored(spec.sha, spec.size)


@local_only
@pytest.mark.local_server_only
def test_upload_never_retries_400(shaman_server: ShamanServer, files: Any) -> None:
    path, spec = files(1000)
    shaman_server.faults.fail_next("upload", count=2, status=400, message="bad header")
    sleeps = Sleeps()
    with make_client(shaman_server.url, sleeps) as client, pytest.raises(ServerError):
        client.upload(spec.sha, spec.size, path)
    assert shaman_server.counters.requests["upload"] == 1 and sleeps.delays == []


def test_upload_retries_a_refused_connection_until_the_server_is_back(
        shaman_server_factory: Any, tmp_path: Path, files: Any) -> None:
    path, spec = files(100_000)
    port = free_port()
    started: list[ShamanServer] = []
    sleeps = Sleeps(lambda _s: started or started.append(
        shaman_server_factory(storage=tmp_path / "late", port=port)))
    with make_client(f"http://127.0.0.1:{port}", sleeps) as client:
        assert client.upload(spec.sha, spec.size, path) is UploadResult.STORED
    assert sleeps.delays == [0.25]
    assert started[0].counters.requests["upload"] == 1


@local_only
@pytest.mark.local_server_only
def test_drop_mid_body_is_upload_reset_not_looped(any_style_server: ShamanServer,
                                                  files: Any) -> None:
    path, spec = files(16 * 1024 * 1024)
    any_style_server.faults.drop_upload_after(2 * 1024 * 1024)
    sleeps = Sleeps()
    with make_client(any_style_server.url, sleeps) as client:
        with pytest.raises(UploadReset) as info:
            client.upload(spec.sha, spec.size, path)
        assert any_style_server.url in str(info.value)
        assert "file's status" in str(info.value)
        assert any_style_server.counters.requests["upload"] == 1 and sleeps.delays == []
        # what the caller does next: ask (the server may still be cleaning up), then send
        _wait_for(lambda: client.file_status(spec.sha, spec.size) == "unknown",
                  "the server forgot the dropped upload")
        assert client.upload(spec.sha, spec.size, path) is UploadResult.STORED


# --- checkout/create is never repeated blindly --------------------------------------------


@local_only
@pytest.mark.parametrize("status", [400, 500, 502, 503, 504])
@pytest.mark.local_server_only
def test_create_is_not_retried_on_errors(shaman_server: ShamanServer, status: int) -> None:
    shaman_server.faults.fail_next("create", count=3, status=status, message="oops")
    sleeps = Sleeps()
    with make_client(shaman_server.url, sleeps) as client, pytest.raises(ServerError):
        client.create_checkout([], "job")
    assert shaman_server.counters.requests["create"] == 1 and sleeps.delays == []


@local_only
@pytest.mark.local_server_only
def test_create_answer_lost_is_reported_with_the_path_and_not_repeated(
        shaman_server: ShamanServer) -> None:
    shaman_server.faults.hang_next("create")
    sleeps = Sleeps()
    with make_client(shaman_server.url, sleeps, read_timeout=0.3) as client, \
            pytest.raises(CheckoutAnswerLost) as info:
        client.create_checkout([], "shots/sh020/lighting")
    assert "'shots/sh020/lighting'" in str(info.value) and shaman_server.url in str(info.value)
    assert shaman_server.counters.requests["create"] == 1 and sleeps.delays == []
    shaman_server.faults.reset()


def test_create_answer_lost_when_the_connection_drops_after_sending() -> None:
    with Canned(drop=True) as server:
        sleeps = Sleeps()
        with make_client(server.url, sleeps) as client, \
                pytest.raises(CheckoutAnswerLost) as info:
            client.create_checkout([], "shots/sh030")
        assert "'shots/sh030'" in str(info.value) and server.url in str(info.value)
        assert len(server.seen) == 1 and sleeps.delays == []


def test_create_retries_only_a_refused_connection(shaman_server_factory: Any,
                                                  tmp_path: Path) -> None:
    port = free_port()
    started: list[ShamanServer] = []
    sleeps = Sleeps(lambda _s: started or started.append(
        shaman_server_factory(storage=tmp_path / "late", port=port)))
    with make_client(f"http://127.0.0.1:{port}", sleeps) as client:
        assert client.create_checkout([], "job") == "job"
    assert sleeps.delays == [0.25] and started[0].counters.requests["create"] == 1


def test_server_restart_between_calls_is_survived(server_process: Any, files: Any) -> None:
    server = server_process()
    path, spec = files(50_000)
    with make_client(server.url) as client:
        assert client.upload(spec.sha, spec.size, path) is UploadResult.STORED
        server.restart()  # same port and storage; the pooled connection is now dead
        assert client.requirements([spec]) == []
        assert client.file_status(spec.sha, spec.size) == "stored"


# --- cancel and abort ----------------------------------------------------------------------


@local_only
@pytest.mark.local_server_only
def test_cancel_between_chunks(shaman_server: ShamanServer, files: Any) -> None:
    path, spec = files(4 * 1024 * 1024)
    cancel = threading.Event()
    progress: list[int] = []

    def on_bytes(n: int) -> None:
        progress.append(n)
        if len(progress) == 2:
            cancel.set()

    with make_client(shaman_server.url, chunk_size=256 * 1024) as client:
        with pytest.raises(Cancelled):
            client.upload(spec.sha, spec.size, path, on_bytes=on_bytes, cancel=cancel)
        assert progress == [256 * 1024, 256 * 1024]
        assert not shaman_server.is_stored(spec.sha, spec.size)
        # cancel set before the call: nothing is sent at all
        with pytest.raises(Cancelled):
            client.upload(spec.sha, spec.size, path, cancel=cancel)
        # the client itself is fine for the next upload, once the server has noticed
        # that the cancelled one went away
        _wait_for(lambda: client.file_status(spec.sha, spec.size) == "unknown",
                  "the server forgot the cancelled upload")
        assert client.upload(spec.sha, spec.size, path) is UploadResult.STORED
    assert shaman_server.counters.requests["upload"] == 2


def _run_in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:  # the test inspects it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Event ordering: wait until the server has seen the request (bounded, no assert on
    how long it took)."""
    done = threading.Event()
    for _ in range(2000):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError(f"never happened: {what}")


@local_only
@pytest.mark.parametrize("size", [10_000, 64 * 1024 * 1024])
@pytest.mark.parametrize("with_cancel", [True, False])
@pytest.mark.local_server_only
def test_abort_interrupts_a_hanging_upload(shaman_server: ShamanServer, files: Any,
                                           size: int, with_cancel: bool) -> None:
    """A small body is all sent and the client waits for an answer; a big one is stuck in
    send() because the server never reads. abort() from another thread ends both."""
    path, spec = files(size)
    shaman_server.faults.hang_next("upload")
    cancel = threading.Event()
    client = make_client(shaman_server.url, read_timeout=600)
    thread, outcome = _run_in_thread(lambda: client.upload(
        spec.sha, size, path, cancel=cancel if with_cancel else None))
    _wait_for(lambda: requests_to(shaman_server, "upload") == 1, "upload reached the server")
    assert thread.is_alive()  # blocked on the server
    if with_cancel:
        cancel.set()
    client.abort()
    thread.join(timeout=120)
    assert not thread.is_alive()
    expected = Cancelled if with_cancel else (Cancelled, UploadReset)
    assert isinstance(outcome.get("error"), expected), outcome
    with pytest.raises(Cancelled):  # an aborted client stays stopped
        client.requirements([])
    client.close()
    shaman_server.faults.reset()


@local_only
@pytest.mark.parametrize("endpoint", ["requirements", "create"])
@pytest.mark.local_server_only
def test_abort_interrupts_a_hanging_call(shaman_server: ShamanServer, endpoint: str) -> None:
    shaman_server.faults.hang_next(endpoint)
    client = make_client(shaman_server.url, read_timeout=600)
    call = (lambda: client.requirements([])) if endpoint == "requirements" else (
        lambda: client.create_checkout([], "job"))
    thread, outcome = _run_in_thread(call)
    _wait_for(lambda: requests_to(shaman_server, endpoint) == 1, "call reached the server")
    client.abort()
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), Cancelled), outcome
    assert requests_to(shaman_server, endpoint) == 1  # not retried after the abort
    client.close()
    shaman_server.faults.reset()


def test_abort_cuts_a_backoff_short() -> None:
    """With the real sleep, abort() during a back-off ends the call at once."""
    url = f"http://127.0.0.1:{free_port()}"
    client = ShamanClient(url, ClientSettings(backoff_s=600, max_attempts=3))
    entered = threading.Event()
    import logging

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "trying again" in record.getMessage():
                entered.set()

    spy = Spy()
    logging.getLogger("shaman_addon.shaman").addHandler(spy)
    try:
        thread, outcome = _run_in_thread(lambda: client.requirements([]))
        assert entered.wait(60)
        client.abort()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert isinstance(outcome.get("error"), Cancelled)
    finally:
        logging.getLogger("shaman_addon.shaman").removeHandler(spy)
        client.close()


@local_only
def test_parallel_uploads_share_the_pool(shaman_server: ShamanServer, files: Any) -> None:
    made = [files(200_000 + i) for i in range(12)]
    with make_client(shaman_server.url, pool_size=4) as client:
        threads = [_run_in_thread(lambda p=p, s=s: client.upload(s.sha, s.size, p))
                   for p, s in made]
        for thread, _ in threads:
            thread.join(timeout=120)
        assert [o.get("result") for _, o in threads] == [UploadResult.STORED] * 12
        assert client.requirements([s for _, s in made]) == []


# --- environment: proxies and TLS ----------------------------------------------------------


def test_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    config = json.dumps({"isFirstRun": False, "shamanEnabled": True,
                         "storageLocation": "/farm/jobs"}).encode()
    with Canned(200, config, "application/json") as proxy:
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                     "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        with make_client("http://manager.invalid:8080") as client:
            assert client.configuration().storage_location == "/farm/jobs"
    assert proxy.seen[0]["path"] == "http://manager.invalid:8080/api/v3/configuration"


def test_tls_is_verified_and_a_ca_bundle_is_used(tls_cert: tuple[Path, Path]) -> None:
    cert, key = tls_cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    config = json.dumps({"isFirstRun": False, "shamanEnabled": True,
                         "storageLocation": "/farm/jobs"}).encode()
    with Canned(200, config, "application/json", tls=context) as server:
        with make_client(server.url, max_attempts=1) as client, \
                pytest.raises(ServerUnreachable) as info:
            client.configuration()
        assert "TLS" in str(info.value) and "CA bundle" in str(info.value)
        assert server.url in str(info.value)
        with make_client(server.url, ca_bundle=str(cert)) as client:
            assert client.configuration().shaman_enabled is True
        with make_client(server.url, verify_tls=False) as client, \
                pytest.warns(urllib3.exceptions.InsecureRequestWarning):
            assert client.configuration().shaman_enabled is True


def test_abort_interrupts_a_hanging_tls_upload(tls_cert: tuple[Path, Path], files: Any) -> None:
    """Over TLS the socket is shut down under the SSL layer; the call still ends cleanly."""
    cert, key = tls_cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()
    release = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        conn, _ = listener.accept()
        tls = context.wrap_socket(conn, server_side=True)  # handshake, then never read
        held.append(tls)
        accepted.set()
        release.wait()
        tls.close()

    server_thread = threading.Thread(target=serve, daemon=True)
    server_thread.start()
    path, spec = files(32 * 1024 * 1024)
    client = make_client(f"https://127.0.0.1:{listener.getsockname()[1]}",
                         ca_bundle=str(cert), read_timeout=600)
    try:
        thread, outcome = _run_in_thread(lambda: client.upload(spec.sha, spec.size, path))
        assert accepted.wait(60)
        client.abort()
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert isinstance(outcome.get("error"), Cancelled), outcome
    finally:
        release.set()
        server_thread.join(timeout=60)
        listener.close()
        client.close()


@local_only
@pytest.mark.parametrize("size", [10_000, 64 * 1024 * 1024])
@pytest.mark.local_server_only
def test_stalled_upload_times_out_as_upload_reset(shaman_server: ShamanServer, files: Any,
                                                  size: int) -> None:
    """The server never reads (big body: stuck in send) or never answers (small body):
    the read timeout ends it, reported as a reset so the caller asks the status."""
    path, spec = files(size)
    shaman_server.faults.hang_next("upload")
    sleeps = Sleeps()
    with make_client(shaman_server.url, sleeps, read_timeout=0.3) as client, \
            pytest.raises(UploadReset) as info:
        client.upload(spec.sha, size, path)
    assert "0.3 s" in str(info.value) and shaman_server.url in str(info.value)
    assert shaman_server.counters.requests["upload"] == 1 and sleeps.delays == []
    shaman_server.faults.reset()


@pytest.fixture
def full_backlog() -> Any:
    """A port whose listen queue is full: a new connection's SYN gets no answer, so
    connecting times out (Linux keeps backlog + 1 connections queued)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield f"http://127.0.0.1:{port}"
    for sock in [*fillers, listener]:
        sock.close()


@pytest.mark.parametrize("call", ["requirements", "create"])
def test_connect_timeout_is_named_and_retried_as_nothing_was_sent(full_backlog: str,
                                                                  call: str) -> None:
    sleeps = Sleeps()
    with make_client(full_backlog, sleeps, connect_timeout=0.3) as client, \
            pytest.raises(ServerTimeout) as info:
        if call == "requirements":
            client.requirements([])
        else:
            client.create_checkout([], "job")
    assert "0.3 s" in str(info.value) and "connect timeout" in str(info.value)
    assert full_backlog in str(info.value)
    assert sleeps.delays == [0.25, 0.5, 1.0]
