"""The local Shaman server against every rule of data/SHAMAN_PROTOCOL.md.

Only the standard library's ``http.client`` (and raw sockets where a test must control
exactly what is on the wire) talks to the server here, never our own client, so the
server and the client cannot share a misreading of the protocol.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import select
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import shaman_server
from shaman_server import ShamanServer, decode_original_filename, go_quote

pytestmark = pytest.mark.local_server_only

TIMEOUT = 30.0
MiB = 1024 * 1024


# ---------------------------------------------------------------------------------------
# Helpers


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    will_close: bool

    def json(self) -> Any:
        assert self.headers.get("content-type") == "application/json", self.headers
        return json.loads(self.body)


def _reply(response: http.client.HTTPResponse) -> Reply:
    body = response.read()
    headers = {k.lower(): v for k, v in response.getheaders()}
    return Reply(response.status, headers, body, response.will_close)


def call(server: Any, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None,
         conn: http.client.HTTPConnection | None = None) -> Reply:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        return _reply(conn.getresponse())
    finally:
        if own:
            conn.close()


def post_json(server: Any, endpoint: str, doc: Any, **kw: Any) -> Reply:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return call(server, "POST", f"/api/v3/shaman/checkout/{endpoint}", body,
                {"Content-Type": "application/json"}, **kw)


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fspec(data: bytes, path: str) -> dict[str, Any]:
    return {"sha": sha_of(data), "size": len(data), "path": path}


def upload(server: Any, data: bytes, *, sha: str | None = None, size: int | None = None,
           headers: dict[str, str] | None = None, **kw: Any) -> Reply:
    sha = sha_of(data) if sha is None else sha
    size = len(data) if size is None else size
    all_headers = {"Content-Type": "application/octet-stream"}
    all_headers.update(headers or {})
    return call(server, "POST", f"/api/v3/shaman/files/{sha}/{size}", data, all_headers, **kw)


def store(server: Any, data: bytes) -> None:
    reply = upload(server, data)
    assert reply.status in (200, 204), reply


def status_of(server: Any, data: bytes) -> str:
    reply = call(server, "GET", f"/api/v3/shaman/files/{sha_of(data)}/{len(data)}")
    assert reply.status == 200
    return reply.json()["status"]


def error(reply: Reply) -> dict[str, Any]:
    doc = reply.json()
    assert set(doc) == {"code", "message"}, doc
    assert doc["code"] == reply.status
    return doc


def validation_error(reply: Reply) -> str:
    """A request-validator 400: ``{"message": ...}`` without a code, as a Manager sends."""
    assert reply.status == 400
    doc = reply.json()
    assert set(doc) == {"message"}, doc
    return doc["message"]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll until the server reaches a state; the deadline only guards against a hang."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


class RawUpload:
    """An upload written by hand on a socket, so a test controls each byte and the timing."""

    def __init__(self, server: Any, sha: str, size: int, *, content_length: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        lines = [f"POST /api/v3/shaman/files/{sha}/{size} HTTP/1.1", "Host: 127.0.0.1",
                 "Content-Type: application/octet-stream"]
        if content_length is not None:
            lines.append(f"Content-Length: {content_length}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> Reply:
        response = http.client.HTTPResponse(self.sock)
        response.begin()
        return _reply(response)

    def at_eof(self) -> bool:
        """True when the server closed its side (no more bytes will come)."""
        return self.sock.recv(1) == b""

    def close(self) -> None:
        self.sock.close()


def jobs_listing(storage: Path) -> dict[str, str]:
    out = {}
    for path in sorted((storage / "jobs").rglob("*")):
        key = path.relative_to(storage / "jobs").as_posix()
        out[key] = f"-> {os.readlink(path)}" if path.is_symlink() else "dir"
    return out


# ---------------------------------------------------------------------------------------
# Configuration and routing


def test_configuration_says_shaman_is_on_and_where_jobs_go(any_style_server: ShamanServer) -> None:
    reply = call(any_style_server, "GET", "/api/v3/configuration")
    assert reply.status == 200
    assert reply.json() == {"isFirstRun": False, "shamanEnabled": True,
                            "storageLocation": str(any_style_server.storage / "jobs")}
    assert reply.body.endswith(b"}\n")


def test_unknown_route_and_wrong_method(shaman_server: ShamanServer) -> None:
    reply = call(shaman_server, "GET", "/api/v3/nothing-here")
    assert reply.status == 404
    assert reply.json() == {"message": "Not Found"}
    reply = call(shaman_server, "GET", "/api/v3/shaman/checkout/requirements")
    assert reply.status == 405


def test_keep_alive_serves_many_requests_on_one_connection(shaman_server: ShamanServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", shaman_server.port, timeout=TIMEOUT)
    data = b"keep me alive"
    try:
        for _ in range(3):
            reply = call(shaman_server, "GET", "/api/v3/configuration", conn=conn)
            assert reply.status == 200 and not reply.will_close
        reply = upload(shaman_server, data, conn=conn)
        assert reply.status == 200 and not reply.will_close
        reply = post_json(shaman_server, "requirements", {"files": [fspec(data, "a")]}, conn=conn)
        assert reply.json() == {"files": []}
        assert conn.sock is not None  # still the same connection, never reopened
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------
# Requirements


def test_requirements_lists_unknown_files_in_order(any_style_server: ShamanServer) -> None:
    a, b, c = b"first file", b"second file", b"third file"
    reply = post_json(any_style_server, "requirements",
                      {"files": [fspec(c, "c.txt"), fspec(a, "x/a.txt"), fspec(b, "b.txt")]})
    assert reply.status == 200
    assert reply.json() == {"files": [
        dict(fspec(c, "c.txt"), status="unknown"),
        dict(fspec(a, "x/a.txt"), status="unknown"),
        dict(fspec(b, "b.txt"), status="unknown"),
    ]}
    # Same key order as a Manager's answer.
    assert list(reply.json()["files"][0]) == ["path", "sha", "size", "status"]


def test_requirements_leaves_out_stored_files(any_style_server: ShamanServer) -> None:
    a, b = b"stored already", b"not yet"
    store(any_style_server, a)
    reply = post_json(any_style_server, "requirements",
                      {"files": [fspec(a, "a"), fspec(b, "b")]})
    assert reply.json() == {"files": [dict(fspec(b, "b"), status="unknown")]}
    store(any_style_server, b)
    reply = post_json(any_style_server, "requirements",
                      {"files": [fspec(a, "a"), fspec(b, "b")]})
    assert reply.json() == {"files": []}


def test_requirements_dedups_by_sha_and_size_first_path_wins(
        any_style_server: ShamanServer) -> None:
    a = b"same content twice"
    other_size = dict(fspec(a, "other-size"), size=len(a) + 1)
    reply = post_json(any_style_server, "requirements", {"files": [
        fspec(a, "first/a.txt"), fspec(a, "second/a.txt"), other_size, fspec(a, "third")]})
    assert reply.json() == {"files": [
        dict(fspec(a, "first/a.txt"), status="unknown"),
        dict(other_size, status="unknown"),
    ]}


def test_requirements_empty_list(any_style_server: ShamanServer) -> None:
    reply = post_json(any_style_server, "requirements", {"files": []})
    assert reply.status == 200
    assert reply.body == b'{"files":[]}\n'


def test_requirements_reports_an_upload_in_progress(any_style_server: ShamanServer) -> None:
    data = os.urandom(4096)
    raw = RawUpload(any_style_server, sha_of(data), len(data), content_length=len(data))
    try:
        raw.send(data[:100])
        wait_for(lambda: any_style_server.counters.bytes_received >= 100, "100 bytes read")
        reply = post_json(any_style_server, "requirements", {"files": [fspec(data, "p")]})
        assert reply.json() == {"files": [dict(fspec(data, "p"), status="uploading")]}
        assert status_of(any_style_server, data) == "uploading"
        raw.send(data[100:])
        assert raw.response().status in (200, 204)
    finally:
        raw.close()
    assert post_json(any_style_server, "requirements",
                     {"files": [fspec(data, "p")]}).json() == {"files": []}


@pytest.mark.parametrize(("body", "message"), [
    (b"not json", "request body has an error: failed to decode request body: "
                  "invalid character 'o' in literal null (expecting 'u')"),
    (b"<html>", "request body has an error: failed to decode request body: "
                "invalid character '<' looking for beginning of value"),
    (b"", "request body has an error: value is required but missing"),
    (b'{"nofiles": []}', "request body has an error: doesn't match schema "
     '#/components/schemas/ShamanRequirementsRequest: Error at "/files": '
     'property "files" is missing'),
    (b'{"files": {}}', "request body has an error: doesn't match schema "
     '#/components/schemas/ShamanRequirementsRequest: Error at "/files": '
     "value must be an array"),
    (b'{"files": [{"sha": "ab", "size": 1}]}', "request body has an error: doesn't match "
     'schema #/components/schemas/ShamanRequirementsRequest: Error at "/files/0/path": '
     'property "path" is missing'),
    (b'{"files": [{"sha": "ab", "size": 1.5, "path": "p"}]}', "request body has an error: "
     "doesn't match schema #/components/schemas/ShamanRequirementsRequest: "
     'Error at "/files/0/size": value must be an integer'),
    (b'{"files": [{"sha": "ab", "size": "1", "path": "p"}]}', "request body has an error: "
     "doesn't match schema #/components/schemas/ShamanRequirementsRequest: "
     'Error at "/files/0/size": value must be an integer'),
    (b'{"files": [{"sha": 5, "size": 1, "path": "p"}]}', "request body has an error: "
     "doesn't match schema #/components/schemas/ShamanRequirementsRequest: "
     'Error at "/files/0/sha": value must be a string'),
])
def test_requirements_bad_bodies_are_400(any_style_server: ShamanServer, body: bytes,
                                         message: str) -> None:
    reply = post_json(any_style_server, "requirements", body)
    assert validation_error(reply) == message
    assert not reply.will_close  # the body was read: the connection stays usable


def test_requirements_accepts_integral_float_sizes(shaman_server: ShamanServer) -> None:
    reply = post_json(shaman_server, "requirements",
                      {"files": [{"sha": "ab" * 32, "size": 3.0, "path": "p"}]})
    assert reply.json()["files"][0]["size"] == 3


# ---------------------------------------------------------------------------------------
# File status


def test_file_status_unknown_stored_and_other_size(any_style_server: ShamanServer) -> None:
    data = b"status please"
    assert status_of(any_style_server, data) == "unknown"
    store(any_style_server, data)
    reply = call(any_style_server, "GET", f"/api/v3/shaman/files/{sha_of(data)}/{len(data)}")
    assert reply.body == b'{"status":"stored"}\n'
    other = call(any_style_server, "GET", f"/api/v3/shaman/files/{sha_of(data)}/{len(data) + 1}")
    assert other.json() == {"status": "unknown"}


def test_file_status_size_not_a_number(any_style_server: ShamanServer) -> None:
    reply = call(any_style_server, "GET", f"/api/v3/shaman/files/{'a' * 64}/abc")
    assert validation_error(reply) == (
        "Invalid format for parameter filesize: error binding string parameter: "
        'strconv.ParseInt: parsing "abc": invalid syntax')


# ---------------------------------------------------------------------------------------
# Upload


def test_upload_success_manager_style_is_200_empty(shaman_server: ShamanServer) -> None:
    data = os.urandom(3000)
    reply = upload(shaman_server, data)
    assert (reply.status, reply.body) == (200, b"")
    assert "content-type" not in reply.headers
    assert not reply.will_close


def test_upload_success_spec_style_is_204(shaman_server_spec: ShamanServer) -> None:
    reply = upload(shaman_server_spec, os.urandom(3000))
    assert (reply.status, reply.body) == (204, b"")
    assert not reply.will_close


def test_upload_lands_in_the_storage_layout(any_style_server: ShamanServer) -> None:
    data = os.urandom(5000)
    sha = sha_of(data)
    store(any_style_server, data)
    blob = any_style_server.storage / "file-store" / "stored" / sha[:2] / sha[2:] / "5000.blob"
    assert blob.read_bytes() == data
    assert any_style_server.stored_path(sha, 5000) == blob
    assert any_style_server.is_stored(sha, 5000)
    assert not any_style_server.is_stored(sha, 5001)
    uploading = any_style_server.storage / "file-store" / "uploading"
    assert [p for p in uploading.rglob("*") if p.is_file()] == []


def test_upload_in_progress_lives_under_uploading(shaman_server: ShamanServer) -> None:
    data = os.urandom(10_000)
    sha = sha_of(data)
    raw = RawUpload(shaman_server, sha, len(data), content_length=len(data))
    try:
        raw.send(data[:5000])
        wait_for(lambda: shaman_server.counters.bytes_received >= 5000, "5000 bytes read")
        temp = [p for p in (shaman_server.storage / "file-store" / "uploading").rglob("*")
                if p.is_file()]
        assert len(temp) == 1
        assert temp[0].name.startswith(f"{sha}-{len(data)}-")
        assert temp[0].read_bytes() == data[:5000]
        assert not shaman_server.is_stored(sha, len(data))
        raw.send(data[5000:])
        assert raw.response().status == 200
        assert not temp[0].exists()
    finally:
        raw.close()


def test_upload_empty_file(any_style_server: ShamanServer) -> None:
    reply = upload(any_style_server, b"")
    assert reply.status in (200, 204)
    assert any_style_server.is_stored(sha_of(b""), 0)
    assert any_style_server.stored_path(sha_of(b""), 0).read_bytes() == b""


def test_upload_of_stored_content_is_208_before_the_body_then_close(
        any_style_server: ShamanServer) -> None:
    data = os.urandom(2000)
    store(any_style_server, data)
    # Announce 100 MiB and send none of it: a 208 must come anyway.
    raw = RawUpload(any_style_server, sha_of(data), len(data), content_length=100 * MiB)
    try:
        reply = raw.response()
        assert (reply.status, reply.body) == (208, b"")
        assert reply.headers["content-type"] == "text/plain; charset=UTF-8"
        assert reply.will_close
        assert raw.at_eof()
    finally:
        raw.close()
    assert any_style_server.counters.bytes_received == len(data)  # only the first upload


def test_208_comes_without_100_continue(shaman_server: ShamanServer) -> None:
    data = b"already here"
    store(shaman_server, data)
    raw = RawUpload(shaman_server, sha_of(data), len(data), content_length=len(data),
                    headers={"Expect": "100-continue"})
    try:
        assert raw.response().status == 208
    finally:
        raw.close()


def test_100_continue_then_stored(shaman_server: ShamanServer) -> None:
    data = b"ask before sending"
    raw = RawUpload(shaman_server, sha_of(data), len(data), content_length=len(data),
                    headers={"Expect": "100-continue"})
    try:
        interim = raw.sock.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        raw.send(data)
        assert raw.response().status == 200
    finally:
        raw.close()
    assert shaman_server.is_stored(sha_of(data), len(data))


def test_upload_size_mismatch_is_417(any_style_server: ShamanServer) -> None:
    data = b"second file, B\n"
    reply = upload(any_style_server, data, size=20)
    assert error(reply) == {"code": 417,
                            "message": "file size mismatched, declared 20 but received 15 bytes"}
    reply = upload(any_style_server, data + b"extra", size=len(data), sha=sha_of(data))
    assert error(reply)["message"] == (
        "file size mismatched, declared 15 but received 20 bytes")
    assert not any_style_server.is_stored(sha_of(data), 20)
    assert not any_style_server.is_stored(sha_of(data), 15)


def test_upload_checksum_mismatch_is_417(any_style_server: ShamanServer) -> None:
    data = b"second file, B\n"
    wrong = b"X" * len(data)
    reply = upload(any_style_server, wrong, sha=sha_of(data))
    assert error(reply) == {"code": 417, "message": (
        f"file SHA256 mismatched, declared {sha_of(data)} but received {sha_of(wrong)}")}
    assert not any_style_server.is_stored(sha_of(data), len(data))
    assert not reply.will_close  # the body was read in full
    leftovers = [p for p in (any_style_server.storage / "file-store").rglob("*") if p.is_file()]
    assert leftovers == []


def test_upload_checksums_compare_as_strings(any_style_server: ShamanServer) -> None:
    data = b"case matters"
    reply = upload(any_style_server, data, sha=sha_of(data).upper())
    assert reply.status == 417
    assert "SHA256 mismatched" in error(reply)["message"]


def test_upload_non_hex_checksum_is_refused_only_by_the_bytes(
        any_style_server: ShamanServer) -> None:
    reply = upload(any_style_server, b"abc", sha="zz" * 32)
    assert reply.status == 417


def test_upload_size_not_a_number(any_style_server: ShamanServer) -> None:
    reply = call(any_style_server, "POST", f"/api/v3/shaman/files/{'a' * 64}/12x", b"x",
                 {"Content-Type": "application/octet-stream"})
    assert validation_error(reply) == (
        "Invalid format for parameter filesize: error binding string parameter: "
        'strconv.ParseInt: parsing "12x": invalid syntax')


@pytest.mark.parametrize("value", ["maybe", "yes", "on"])
def test_upload_defer_header_must_be_a_boolean(any_style_server: ShamanServer,
                                               value: str) -> None:
    reply = upload(any_style_server, b"abc", headers={"X-Shaman-Can-Defer-Upload": value})
    assert validation_error(reply) == (
        "Invalid format for parameter X-Shaman-Can-Defer-Upload: error binding string "
        f"parameter: strconv.ParseBool: parsing {go_quote(value)}: invalid syntax")


@pytest.mark.parametrize("value", ["true", "false", "1", "True"])
def test_upload_defer_header_boolean_forms(any_style_server: ShamanServer, value: str) -> None:
    reply = upload(any_style_server, os.urandom(64),
                   headers={"X-Shaman-Can-Defer-Upload": value})
    assert reply.status in (200, 204)


@pytest.mark.parametrize("header", [
    "plain-ascii name.blend",
    "=?utf-8?b?w5xuw69jw7hkw6kgdMOreHR1cmUg4piDLnBuZw==?=",
    "=?UTF-8?B?w5xuw69jw7hkw6kgdMOreHR1cmUg4piDLnBuZw==?=",
])
def test_upload_original_filename_accepted(any_style_server: ShamanServer, header: str) -> None:
    reply = upload(any_style_server, os.urandom(64),
                   headers={"X-Shaman-Original-Filename": header})
    assert reply.status in (200, 204)


@pytest.mark.parametrize("header", [
    "=?utf-8?x?broken?=",
    "=?utf-8?b?not base64!?=",
    "=?utf-8?b?w5w=?= =?utf-8?b?w5w=?=",
    "=?no-such-charset?b?w5w=?=",
    "=?utf-8?b?/w==?=",
])
def test_upload_original_filename_undecodable_is_400(any_style_server: ShamanServer,
                                                     header: str) -> None:
    reply = upload(any_style_server, os.urandom(64),
                   headers={"X-Shaman-Original-Filename": header})
    assert error(reply)["message"] == (
        f"invalid X-Shaman-Original-Filename header: {go_quote(header)}")


def test_upload_original_filename_raw_utf8_is_400(shaman_server: ShamanServer) -> None:
    data = os.urandom(64)
    sock = socket.create_connection(("127.0.0.1", shaman_server.port), timeout=TIMEOUT)
    try:
        sock.sendall(f"POST /api/v3/shaman/files/{sha_of(data)}/{len(data)} HTTP/1.1\r\n"
                     f"Host: x\r\nContent-Length: {len(data)}\r\n".encode()
                     + "X-Shaman-Original-Filename: Ünïcødé.png\r\n\r\n".encode() + data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 400
    finally:
        sock.close()


def test_decode_original_filename_unit() -> None:
    assert decode_original_filename("a.txt") == "a.txt"
    assert decode_original_filename(
        "=?utf-8?b?w5xuw69jw7hkw6kgdMOreHR1cmUg4piDLnBuZw==?=") == "Ünïcødé tëxture ☃.png"
    assert decode_original_filename("=?utf-8?q?caf=C3=A9_au_lait?=") == "café au lait"
    with pytest.raises(ValueError):
        decode_original_filename("café")


def test_upload_without_content_length_is_refused(shaman_server: ShamanServer) -> None:
    raw = RawUpload(shaman_server, "ab" * 32, 3, content_length=None)
    try:
        reply = raw.response()
        assert reply.status == 411
        assert "Content-Length" in error(reply)["message"]
    finally:
        raw.close()
    raw = RawUpload(shaman_server, "ab" * 32, 3, headers={"Transfer-Encoding": "chunked"})
    try:
        assert raw.response().status == 411
    finally:
        raw.close()


def test_upload_refuses_checksums_that_could_leave_the_store(
        shaman_server: ShamanServer) -> None:
    reply = upload(shaman_server, b"x", sha="%2e%2e")
    assert reply.status == 400
    assert "invalid checksum" in error(reply)["message"]


def test_defer_header_gets_425_while_another_upload_runs(any_style_server: ShamanServer) -> None:
    data = os.urandom(50_000)
    raw = RawUpload(any_style_server, sha_of(data), len(data), content_length=len(data))
    try:
        raw.send(data[:1000])
        wait_for(lambda: any_style_server.counters.bytes_received >= 1000, "1000 bytes read")
        reply = upload(any_style_server, data, headers={"X-Shaman-Can-Defer-Upload": "true"})
        assert (reply.status, reply.body) == (425, b"")
        assert reply.will_close
        raw.send(data[1000:])
        assert raw.response().status in (200, 204)
    finally:
        raw.close()
    assert any_style_server.counters.bytes_received == len(data)  # the 425 read nothing
    assert any_style_server.counters.statuses[("upload", 425)] == 1


def test_other_upload_finishing_first_resets_this_one(any_style_server: ShamanServer) -> None:
    data = os.urandom(3 * MiB)
    sha = sha_of(data)
    raw = RawUpload(any_style_server, sha, len(data), content_length=len(data))
    try:
        raw.send(data[:MiB])
        wait_for(lambda: any_style_server.counters.bytes_received >= MiB, "1 MiB read")
        # Without the defer header a second upload of the same content runs in parallel...
        assert upload(any_style_server, data).status in (200, 204)
        assert any_style_server.is_stored(sha, len(data))
        # ...and the first one is cut off (a reset, no HTTP status) as soon as it sends on.
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            raw.send(data[MiB:])
            raw.response()
    finally:
        raw.close()
    assert any_style_server.stored_path(sha, len(data)).read_bytes() == data
    temp = [p for p in (any_style_server.storage / "file-store" / "uploading").rglob("*")
            if p.is_file()]
    assert temp == []


@pytest.mark.parametrize("layout", ["zeros-at-end", "zeros-only", "zeros-between"])
def test_upload_with_long_runs_of_zeros_reads_back_the_same(shaman_server: ShamanServer,
                                                            layout: str) -> None:
    """Zero runs may be stored as holes; the blob must still read back byte for byte."""
    some = os.urandom(100_000)
    zeros = bytes(3 * MiB)
    data = {"zeros-at-end": some + zeros, "zeros-only": zeros,
            "zeros-between": some + zeros + some}[layout]
    assert upload(shaman_server, data).status == 200
    blob = shaman_server.stored_path(sha_of(data), len(data))
    assert blob.stat().st_size == len(data)
    assert blob.read_bytes() == data


def test_many_concurrent_uploads_of_the_same_content_never_deadlock(
        shaman_server: ShamanServer) -> None:
    data = os.urandom(2 * MiB)
    outcomes: list[object] = []
    lock = threading.Lock()

    def one(defer: bool) -> None:
        headers = {"X-Shaman-Can-Defer-Upload": "true"} if defer else {}
        try:
            result: object = upload(shaman_server, data, headers=headers).status
        except (ConnectionError, http.client.HTTPException) as exc:
            result = type(exc).__name__
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=one, args=(i % 2 == 0,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "an upload hung"
    assert len(outcomes) == 12
    assert 200 in outcomes
    assert set(outcomes) <= {200, 208, 425, "ConnectionResetError", "BrokenPipeError",
                             "RemoteDisconnected"}
    assert shaman_server.stored_path(sha_of(data), len(data)).read_bytes() == data
    # Every request is over: nothing is left "uploading".
    assert status_of(shaman_server, data) == "stored"


@pytest.mark.slow
def test_large_upload_streams_in_constant_memory(server_process: Callable[..., Any],
                                                 tmp_path: Path) -> None:
    """A separate server process takes 256 MiB while its peak memory stays small."""
    proc = server_process()
    size = 256 * MiB
    block = os.urandom(MiB)
    digest = hashlib.sha256()
    for _ in range(size // MiB):
        digest.update(block)
    sha = digest.hexdigest()
    status_file = Path(f"/proc/{proc.proc.pid}/status")

    def peak_kib() -> int:
        for line in status_file.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    before = peak_kib()
    conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=TIMEOUT)
    try:
        conn.putrequest("POST", f"/api/v3/shaman/files/{sha}/{size}")
        conn.putheader("Content-Length", str(size))
        conn.putheader("Content-Type", "application/octet-stream")
        conn.endheaders()
        for _ in range(size // MiB):
            conn.send(block)
        reply = _reply(conn.getresponse())
    finally:
        conn.close()
    assert reply.status == 200
    assert proc.stored_path(sha, size).stat().st_size == size
    grown_mib = (peak_kib() - before) / 1024
    assert grown_mib < 32, f"server peak memory grew by {grown_mib:.1f} MiB"


# ---------------------------------------------------------------------------------------
# Checkout


def _stored_set(server: Any) -> tuple[bytes, bytes]:
    a, b = b"hello shaman, file A\n", b"second file, B\n"
    store(server, a)
    store(server, b)
    return a, b


def test_checkout_creates_relative_symlinks(any_style_server: ShamanServer) -> None:
    a, b = _stored_set(any_style_server)
    empty = b""
    store(any_style_server, empty)
    reply = post_json(any_style_server, "create", {"checkoutPath": "shots/sh010/job-1", "files": [
        fspec(a, "textures/a.txt"), fspec(b, "textures/sub/b.txt"),
        fspec(b, "textures/Ünïcødé tëxture ☃.png"), fspec(empty, "empty.txt")]})
    assert reply.status == 200
    assert reply.body == b'{"checkoutPath":"shots/sh010/job-1"}\n'
    root = any_style_server.storage / "jobs" / "shots" / "sh010" / "job-1"
    link = root / "textures" / "sub" / "b.txt"
    assert os.readlink(link) == (
        f"../../../../../../file-store/stored/{sha_of(b)[:2]}/{sha_of(b)[2:]}/{len(b)}.blob")
    for rel, data in [("textures/a.txt", a), ("textures/sub/b.txt", b),
                      ("textures/Ünïcødé tëxture ☃.png", b), ("empty.txt", empty)]:
        path = root / rel
        assert path.is_symlink() and not os.path.isabs(os.readlink(path))
        assert path.read_bytes() == data
    assert any_style_server.counters.checkouts == ["shots/sh010/job-1"]


def test_checkout_survives_moving_the_storage(shaman_server: ShamanServer,
                                              tmp_path: Path) -> None:
    """Relative links keep working when the whole storage folder is mounted elsewhere."""
    a, _ = _stored_set(shaman_server)
    assert post_json(shaman_server, "create", {"checkoutPath": "j", "files": [
        fspec(a, "deep/er/a.txt")]}).status == 200
    shaman_server.stop()
    moved = tmp_path / "moved"
    shaman_server.storage.rename(moved)
    assert (moved / "jobs" / "j" / "deep" / "er" / "a.txt").read_bytes() == a


def test_checkout_existing_path_manager_adds_suffix(shaman_server: ShamanServer) -> None:
    a, _ = _stored_set(shaman_server)
    body = {"checkoutPath": "shots/job", "files": [fspec(a, "a.txt")]}
    assert post_json(shaman_server, "create", body).json() == {"checkoutPath": "shots/job"}
    second = post_json(shaman_server, "create", body)
    assert second.status == 200
    path = second.json()["checkoutPath"]
    assert path.startswith("shots/job-") and len(path) == len("shots/job-") + 4
    assert path[-4:].isalnum() and path[-4:] == path[-4:].lower()
    assert (shaman_server.storage / "jobs" / path / "a.txt").read_bytes() == a
    third = post_json(shaman_server, "create", body).json()["checkoutPath"]
    assert third not in ("shots/job", path)
    assert shaman_server.counters.checkouts == ["shots/job", path, third]


def test_checkout_existing_path_spec_is_409(shaman_server_spec: ShamanServer) -> None:
    a, _ = _stored_set(shaman_server_spec)
    body = {"checkoutPath": "job", "files": [fspec(a, "a.txt")]}
    assert post_json(shaman_server_spec, "create", body).status == 200
    reply = post_json(shaman_server_spec, "create", body)
    assert reply.status == 409
    assert "job" in error(reply)["message"]
    assert shaman_server_spec.counters.checkouts == ["job"]


def test_checkout_missing_files_manager_is_500(shaman_server: ShamanServer) -> None:
    a, _ = _stored_set(shaman_server)
    reply = post_json(shaman_server, "create", {"checkoutPath": "job-missing", "files": [
        fspec(a, "a.txt"), fspec(b"never uploaded", "missing.txt")]})
    assert error(reply) == {"code": 500,
                            "message": "unexpected error: unknown files requested in checkout"}
    assert not (shaman_server.storage / "jobs" / "job-missing").exists()


def test_checkout_missing_files_spec_is_424(shaman_server_spec: ShamanServer) -> None:
    reply = post_json(shaman_server_spec, "create", {"checkoutPath": "job-missing", "files": [
        fspec(b"never uploaded", "missing.txt")]})
    assert reply.status == 424
    assert "unknown files requested in checkout" in error(reply)["message"]
    assert not (shaman_server_spec.storage / "jobs" / "job-missing").exists()


@pytest.mark.parametrize("path", [
    "", "/abs", "shot:010", "a?b", "a*b", "a;b", "a{b", "a}b", "a\\b", "x/../../y", "../y",
    "x/..", "..",
])
def test_checkout_invalid_path_is_500(any_style_server: ShamanServer, path: str) -> None:
    a, _ = _stored_set(any_style_server)
    reply = post_json(any_style_server, "create", {"checkoutPath": path,
                                                   "files": [fspec(a, "a.txt")]})
    assert error(reply) == {"code": 500,
                            "message": f"unexpected error: invalid checkout path {go_quote(path)}"}
    assert jobs_listing(any_style_server.storage) == {}


@pytest.mark.parametrize("path", ["Ünïcødé job 1", "a/b/c", "x..y", "job.1", "a b-c_d"])
def test_checkout_odd_but_valid_paths(any_style_server: ShamanServer, path: str) -> None:
    a, _ = _stored_set(any_style_server)
    reply = post_json(any_style_server, "create", {"checkoutPath": path,
                                                   "files": [fspec(a, "a.txt")]})
    assert reply.json() == {"checkoutPath": path}
    assert (any_style_server.storage / "jobs" / path / "a.txt").read_bytes() == a


def test_checkout_with_no_files_is_an_empty_folder(any_style_server: ShamanServer) -> None:
    reply = post_json(any_style_server, "create", {"checkoutPath": "job-empty", "files": []})
    assert reply.json() == {"checkoutPath": "job-empty"}
    assert jobs_listing(any_style_server.storage) == {"job-empty": "dir"}


def test_checkout_same_path_twice(any_style_server: ShamanServer) -> None:
    a, b = _stored_set(any_style_server)
    reply = post_json(any_style_server, "create", {"checkoutPath": "job-dup", "files": [
        fspec(a, "t/a.txt"), fspec(a, "t/a.txt")]})
    assert reply.json() == {"checkoutPath": "job-dup"}
    reply = post_json(any_style_server, "create", {"checkoutPath": "job-conflict", "files": [
        fspec(a, "t/a.txt"), fspec(b, "t/a.txt")]})
    message = error(reply)["message"]
    assert message.startswith('unexpected error: symlinking "t/a.txt" to checkout: symlink ')
    assert message.endswith(": file exists")
    assert not (any_style_server.storage / "jobs" / "job-conflict").exists()


@pytest.mark.parametrize("body", [
    {"files": [], "checkout_path": "snake"},
    {"checkoutPath": "no-files"},
])
def test_checkout_bad_body_is_400(any_style_server: ShamanServer, body: dict) -> None:
    message = validation_error(post_json(any_style_server, "create", body))
    missing = "checkoutPath" if "files" in body else "files"
    assert message == ("request body has an error: doesn't match schema "
                       f'#/components/schemas/ShamanCheckout: Error at "/{missing}": '
                       f'property "{missing}" is missing')


@pytest.mark.parametrize("file_path", [
    "/etc/x.txt", "../outside.txt", "a/../../b.txt", "textures\\win\\a.txt", "C:/x.txt",
    "c:x.txt", "a/..", "",
])
def test_strict_server_refuses_file_paths_that_leave_the_checkout(
        any_style_server: ShamanServer, file_path: str) -> None:
    a, _ = _stored_set(any_style_server)
    reply = post_json(any_style_server, "create", {"checkoutPath": "job", "files": [
        fspec(a, "fine.txt"), fspec(a, file_path)]})
    assert reply.status == 400
    assert go_quote(file_path) in error(reply)["message"]
    assert jobs_listing(any_style_server.storage) == {}
    assert any_style_server.counters.checkouts == []


def test_lenient_server_does_what_a_manager_does_with_bad_file_paths(
        shaman_server_factory: Callable[..., ShamanServer]) -> None:
    server = shaman_server_factory("manager", strict_paths=False)
    a, _ = _stored_set(server)
    blob = f"file-store/stored/{sha_of(a)[:2]}/{sha_of(a)[2:]}/{len(a)}.blob"
    reply = post_json(server, "create", {"checkoutPath": "job", "files": [
        fspec(a, "/etc/x.txt"), fspec(a, "textures\\win\\a.txt"), fspec(a, "../escaped.txt")]})
    assert reply.json() == {"checkoutPath": "job"}
    assert jobs_listing(server.storage) == {
        "escaped.txt": f"-> ../{blob}",  # outside the checkout folder: why clients must care
        "job": "dir",
        "job/etc": "dir",
        "job/etc/x.txt": f"-> ../../../{blob}",
        "job/textures\\win\\a.txt": f"-> ../../{blob}",
    }


# ---------------------------------------------------------------------------------------
# Shaman disabled


def test_disabled_shaman_answers_503_everywhere(any_style_server: ShamanServer) -> None:
    data = b"whatever"
    any_style_server.faults.shaman_disabled = True
    expected = b'{"code":503,"message":"shaman server not active"}\n'
    replies = [
        post_json(any_style_server, "requirements", {"files": [fspec(data, "p")]}),
        call(any_style_server, "GET", f"/api/v3/shaman/files/{sha_of(data)}/{len(data)}"),
        upload(any_style_server, data),
        post_json(any_style_server, "create", {"checkoutPath": "j", "files": []}),
    ]
    assert [(r.status, r.body) for r in replies] == [(503, expected)] * 4
    config = call(any_style_server, "GET", "/api/v3/configuration").json()
    assert config["shamanEnabled"] is False
    assert config["storageLocation"] == str(any_style_server.storage)
    assert not any_style_server.is_stored(sha_of(data), len(data))
    any_style_server.faults.reset()
    assert upload(any_style_server, data).status in (200, 204)


# ---------------------------------------------------------------------------------------
# Fault injection


def test_fail_next_counts_down(shaman_server: ShamanServer) -> None:
    shaman_server.faults.fail_next("requirements", count=2, status=502, message="gateway says no")
    body = {"files": []}
    for _ in range(2):
        reply = post_json(shaman_server, "requirements", body)
        assert error(reply) == {"code": 502, "message": "gateway says no"}
    assert post_json(shaman_server, "requirements", body).status == 200
    assert shaman_server.counters.statuses[("requirements", 502)] == 2


@pytest.mark.parametrize("endpoint", ["file_status", "upload", "create", "configuration"])
def test_fail_next_each_endpoint(shaman_server: ShamanServer, endpoint: str) -> None:
    data = b"fault me"
    shaman_server.faults.fail_next(endpoint)
    do: dict[str, Callable[[], Reply]] = {
        "file_status": lambda: call(shaman_server, "GET",
                                    f"/api/v3/shaman/files/{sha_of(data)}/{len(data)}"),
        "upload": lambda: upload(shaman_server, data),
        "create": lambda: post_json(shaman_server, "create",
                                    {"checkoutPath": "j", "files": []}),
        "configuration": lambda: call(shaman_server, "GET", "/api/v3/configuration"),
    }
    assert error(do[endpoint]()) == {"code": 500, "message": "injected failure"}
    assert do[endpoint]().status in (200, 204)
    if endpoint == "upload":
        assert shaman_server.counters.bytes_received_by_file == {
            (sha_of(data), len(data)): len(data)}  # the failed one read nothing


@pytest.mark.parametrize("status", [502, 413])
def test_html_next_sends_a_proxy_page(shaman_server: ShamanServer, status: int) -> None:
    shaman_server.faults.html_next("upload", status=status)
    reply = upload(shaman_server, b"behind a proxy")
    assert reply.status == status
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.body.lstrip().startswith(b"<html>")
    with pytest.raises(ValueError):
        json.loads(reply.body)
    assert upload(shaman_server, b"behind a proxy").status == 200


def test_drop_upload_after_resets_mid_body(shaman_server: ShamanServer) -> None:
    data = os.urandom(2 * MiB)
    shaman_server.faults.drop_upload_after(1000)
    with pytest.raises((ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        upload(shaman_server, data)
    key = (sha_of(data), len(data))
    assert shaman_server.counters.bytes_received_by_file[key] == 1000
    assert not shaman_server.is_stored(*key)
    assert status_of(shaman_server, data) == "unknown"
    assert upload(shaman_server, data).status == 200


def test_drop_upload_after_applies_even_to_stored_content(shaman_server: ShamanServer) -> None:
    data = os.urandom(10_000)
    store(shaman_server, data)
    shaman_server.faults.drop_upload_after(10, count=1)
    raw = RawUpload(shaman_server, sha_of(data), len(data), content_length=len(data))
    try:
        raw.send(data)
        with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
            raw.response()
    finally:
        raw.close()


def test_early_208_and_drop(shaman_server: ShamanServer) -> None:
    data = os.urandom(1000)
    shaman_server.faults.early_208_and_drop()
    raw = RawUpload(shaman_server, sha_of(data), len(data), content_length=len(data))
    try:
        reply = raw.response()
        assert reply.status == 208 and reply.will_close
        assert raw.at_eof()
    finally:
        raw.close()
    assert shaman_server.counters.bytes_received == 0
    assert not shaman_server.is_stored(sha_of(data), len(data))
    assert upload(shaman_server, data).status == 200


def test_hang_next_never_answers_until_reset(shaman_server: ShamanServer) -> None:
    shaman_server.faults.hang_next("requirements")
    sock = socket.create_connection(("127.0.0.1", shaman_server.port), timeout=TIMEOUT)
    try:
        body = b'{"files": []}'
        sock.sendall(b"POST /api/v3/shaman/checkout/requirements HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_for(lambda: shaman_server.counters.requests.get("requirements") == 1,
                 "the hanging request to arrive")
        # Other requests are served meanwhile, and still nothing came on the hanging one.
        assert post_json(shaman_server, "requirements", {"files": []}).status == 200
        assert select.select([sock], [], [], 0)[0] == []
        shaman_server.faults.reset()
        assert sock.recv(1) == b""  # closed without any answer
    finally:
        sock.close()
    assert ("requirements", 200) in shaman_server.counters.statuses
    assert shaman_server.counters.statuses.get(("requirements", 200)) == 1


def test_hang_is_released_by_stop(shaman_server_factory: Callable[..., ShamanServer]) -> None:
    server = shaman_server_factory()
    server.faults.hang_next("configuration")
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    try:
        sock.sendall(b"GET /api/v3/configuration HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: server.counters.requests.get("configuration") == 1, "the request")
        server.stop()
        assert sock.recv(1) == b""
    finally:
        sock.close()


def test_delay_holds_answers_of_one_endpoint(shaman_server: ShamanServer) -> None:
    shaman_server.faults.delay("file_status", 60)
    order: list[str] = []

    def slow() -> None:
        call(shaman_server, "GET", f"/api/v3/shaman/files/{'a' * 64}/1")
        order.append("file_status")

    thread = threading.Thread(target=slow)
    thread.start()
    wait_for(lambda: shaman_server.counters.requests.get("file_status") == 1, "the request")
    call(shaman_server, "GET", "/api/v3/configuration")
    order.append("configuration")
    assert order == ["configuration"]  # the delayed one is still waiting
    shaman_server.faults.reset()  # releases it
    thread.join(TIMEOUT)
    assert order == ["configuration", "file_status"]


def test_delay_of_zero_clears_it(shaman_server: ShamanServer) -> None:
    shaman_server.faults.delay("configuration", 600)
    shaman_server.faults.delay("configuration", 0)
    assert call(shaman_server, "GET", "/api/v3/configuration").status == 200


def test_report_uploading_for_some_requirements_calls(shaman_server: ShamanServer) -> None:
    data = b"someone else has it"
    key = (sha_of(data), len(data))
    shaman_server.faults.report_uploading(*key, calls=2)
    body = {"files": [fspec(data, "p")]}
    assert status_of(shaman_server, data) == "uploading"
    reply = upload(shaman_server, data, headers={"X-Shaman-Can-Defer-Upload": "true"})
    assert reply.status == 425
    for _ in range(2):
        assert post_json(shaman_server, "requirements", body).json()["files"][0][
            "status"] == "uploading"
    assert post_json(shaman_server, "requirements", body).json()["files"][0][
        "status"] == "unknown"
    assert status_of(shaman_server, data) == "unknown"
    assert upload(shaman_server, data, headers={"X-Shaman-Can-Defer-Upload": "true"}
                  ).status == 200


def test_report_uploading_does_not_stop_an_upload_without_the_header(
        shaman_server: ShamanServer) -> None:
    data = b"upload anyway"
    shaman_server.faults.report_uploading(sha_of(data), len(data), calls=5)
    assert upload(shaman_server, data).status == 200
    assert post_json(shaman_server, "requirements",
                     {"files": [fspec(data, "p")]}).json() == {"files": []}


@pytest.mark.parametrize("style", ["manager", "spec"])
def test_lose_uploads_answers_stored_but_keeps_nothing(
        shaman_server_factory: Callable[..., Any], style: str) -> None:
    server = shaman_server_factory(style)
    lost, kept = b"this one is lost", b"this one is kept"
    server.faults.lose_uploads(sha_of(lost), len(lost))
    ok = 204 if style == "spec" else 200
    for _ in range(2):  # every time, not once
        assert upload(server, lost).status == ok
        # the upload is unregistered just after its answer: "uploading" until then
        wait_for(lambda: status_of(server, lost) != "uploading", "the upload ended")
        assert status_of(server, lost) == "unknown"
        assert not server.is_stored(sha_of(lost), len(lost))
    assert upload(server, kept).status == ok
    assert server.is_stored(sha_of(kept), len(kept))
    assert server.counters.bytes_received == 2 * len(lost) + len(kept)  # read whole
    assert server.counters.statuses[("upload", ok)] == 3
    body = {"files": [fspec(lost, "lost.png"), fspec(kept, "kept.png")]}
    answer = post_json(server, "requirements", body).json()["files"]
    assert [(f["path"], f["status"]) for f in answer] == [("lost.png", "unknown")]
    assert list((server.storage / "file-store" / "uploading").rglob("*.*")) == []
    server.faults.reset()
    assert upload(server, lost).status == ok
    assert server.is_stored(sha_of(lost), len(lost))


def test_faults_reject_unknown_endpoints(shaman_server: ShamanServer) -> None:
    with pytest.raises(ValueError):
        shaman_server.faults.fail_next("uploads")


def test_faults_reset_clears_everything(shaman_server: ShamanServer) -> None:
    faults = shaman_server.faults
    faults.shaman_disabled = True
    faults.fail_next("configuration")
    faults.html_next("requirements")
    faults.drop_upload_after(1)
    faults.early_208_and_drop()
    faults.hang_next("file_status")
    faults.delay("create", 60)
    faults.report_uploading("ab" * 32, 1, 10)
    data = b"all clear"
    faults.lose_uploads(sha_of(data), len(data))
    faults.reset()
    assert call(shaman_server, "GET", "/api/v3/configuration").json()["shamanEnabled"]
    assert post_json(shaman_server, "requirements", {"files": []}).status == 200
    assert status_of(shaman_server, data) == "unknown"
    assert upload(shaman_server, data).status == 200
    assert shaman_server.is_stored(sha_of(data), len(data))  # no longer lost
    assert post_json(shaman_server, "create", {"checkoutPath": "j", "files": []}).status == 200


# ---------------------------------------------------------------------------------------
# Counters


def test_counters_record_what_happened(shaman_server: ShamanServer) -> None:
    a, b = b"counted A", b"counted BB"
    post_json(shaman_server, "requirements", {"files": [fspec(a, "a"), fspec(b, "b"),
                                                        fspec(a, "a2")]})
    store(shaman_server, a)
    store(shaman_server, b)
    upload(shaman_server, a)  # 208
    never = b"never stored"
    upload(shaman_server, b"wrong", sha=sha_of(never), size=len(never))  # 417, 5 bytes read
    status_of(shaman_server, a)
    post_json(shaman_server, "create", {"checkoutPath": "c", "files": [fspec(a, "a")]})
    counters = shaman_server.counters
    assert counters.requests == {"requirements": 1, "upload": 4, "file_status": 1, "create": 1}
    assert counters.statuses == {("requirements", 200): 1, ("upload", 200): 2,
                                 ("upload", 208): 1, ("upload", 417): 1,
                                 ("file_status", 200): 1, ("create", 200): 1}
    assert counters.bytes_received == len(a) + len(b) + 5
    assert counters.bytes_received_by_file == {(sha_of(a), len(a)): len(a),
                                               (sha_of(b), len(b)): len(b),
                                               (sha_of(never), len(never)): 5}
    assert counters.requirements_files == [3]
    assert counters.checkouts == ["c"]
    counters.reset()
    assert counters.requests == {} and counters.statuses == {}
    assert counters.bytes_received == 0 and counters.bytes_received_by_file == {}
    assert counters.requirements_files == [] and counters.checkouts == []


def test_counters_snapshots_are_copies(shaman_server: ShamanServer) -> None:
    snapshot = shaman_server.counters.requests
    call(shaman_server, "GET", "/api/v3/configuration")
    assert snapshot == {}
    assert shaman_server.counters.requests == {"configuration": 1}


def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    with ShamanServer(tmp_path / "s", style="spec") as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert call(server, "GET", "/api/v3/configuration").status == 200
    with pytest.raises(ConnectionRefusedError):
        call(server, "GET", "/api/v3/configuration")


# ---------------------------------------------------------------------------------------
# As its own process


def test_process_kill_and_restart_keeps_the_store(server_process: Callable[..., Any]) -> None:
    proc = server_process(style="spec")
    assert proc.url == f"http://127.0.0.1:{proc.port}"
    data = os.urandom(5000)
    assert upload(proc, data).status == 204
    conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=TIMEOUT)
    call(proc, "GET", "/api/v3/configuration", conn=conn)  # a pooled connection
    port = proc.port
    proc.kill()
    with pytest.raises(ConnectionRefusedError):
        call(proc, "GET", "/api/v3/configuration")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        call(proc, "GET", "/api/v3/configuration", conn=conn)
    conn.close()
    proc.start()  # same port, same storage
    assert proc.port == port
    assert status_of(proc, data) == "stored"
    assert post_json(proc, "requirements", {"files": [fspec(data, "p")]}).json() == {"files": []}
    assert upload(proc, data).status == 208
    assert post_json(proc, "create", {"checkoutPath": "after-restart",
                                      "files": [fspec(data, "d.bin")]}).status == 200
    assert (proc.storage / "jobs" / "after-restart" / "d.bin").read_bytes() == data


def test_process_restart_helper_and_sigterm(server_process: Callable[..., Any]) -> None:
    proc = server_process()
    first = proc.proc
    port = proc.port
    proc.restart()
    assert proc.port == port and proc.proc is not first
    process = proc.proc
    process.send_signal(signal.SIGTERM)
    assert process.wait(TIMEOUT) == 0


def test_process_prints_one_line_and_picks_a_free_port(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).with_name("shaman_server.py")
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--storage", str(tmp_path / "s"),
         "--style", "manager", "--no-strict-paths"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:") and line.endswith("\n")
        port = int(line.strip().rsplit(":", 1)[1])
        assert port > 0
        process.send_signal(signal.SIGINT)
        assert process.wait(TIMEOUT) == 0
        assert process.stdout.read() == ""  # exactly one line
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_process_counters_and_faults_over_http(server_process: Callable[..., Any]) -> None:
    proc = server_process()
    data = b"remote control"
    store(proc, data)
    counters = call(proc, "GET", "/test/counters").json()
    assert counters["requests"] == {"upload": 1}
    assert counters["bytes_received_by_file"] == [[sha_of(data), len(data), len(data)]]
    def fault(doc: dict[str, Any]) -> Reply:
        return call(proc, "POST", "/test/fault", json.dumps(doc).encode(),
                    {"Content-Type": "application/json"})

    assert fault({"call": "fail_next", "kwargs": {"endpoint": "configuration"}}).status == 204
    assert call(proc, "GET", "/api/v3/configuration").status == 500
    assert fault({"call": "shaman_disabled"}).status == 204
    assert call(proc, "GET", "/api/v3/configuration").json()["shamanEnabled"] is False
    assert fault({"call": "nope"}).status == 400
    assert call(proc, "POST", "/test/reset", b"").status == 204
    assert call(proc, "GET", "/test/counters").json()["requests"] == {}
    assert call(proc, "GET", "/api/v3/configuration").json()["shamanEnabled"] is True


# ---------------------------------------------------------------------------------------
# The quick ways at 100,000 files give what the general ways give


_FUZZ_ALPHABET = ["a", "b", ".", "/", "\\", "\0", ":", "C", "é"]


def _fuzz_paths(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choices(_FUZZ_ALPHABET, k=rng.randrange(0, 9))) for _ in range(count)]


def test_plain_paths_are_joined_as_normpath_would() -> None:
    rng = random.Random(14)
    base = "/srv/jobs/shot/a"
    for path in _fuzz_paths(rng, 20000):
        if shaman_server._is_plain_relative(path):
            link = base + "/" + path
            assert os.path.normpath(link) == link, repr(path)
            assert link[:link.rindex("/")] == os.path.dirname(link), repr(path)


def test_whole_list_path_tests_agree_with_each_path_tested() -> None:
    rng = random.Random(3)
    for _ in range(20000):
        paths = _fuzz_paths(rng, rng.randrange(0, 4))
        if rng.random() < 0.5:  # lists of usual paths too, or all would be refused
            paths = [p.replace("\0", "x").replace("\\", "y").replace(":", "z") for p in paths]
        files = [{"path": p} for p in paths]
        joined = shaman_server._joined_paths(files)
        plain = all(shaman_server._is_plain_relative(p) and "\0" not in p for p in paths)
        assert shaman_server._all_plain(joined, len(paths)) == (plain and bool(paths)), paths
        leave = any(shaman_server.file_path_leaves_checkout(p) for p in paths)
        assert shaman_server._none_leave(joined, len(paths)) == (not leave), paths
        shas = _fuzz_paths(rng, rng.randrange(0, 4))
        each = all(shaman_server._SAFE_SHA.fullmatch(sha) for sha in shas)
        assert bool(shaman_server._SAFE_SHAS.fullmatch("\0".join(shas) + "\0")) == (
            each and bool(shas)), shas


def test_the_quick_schema_pass_never_accepts_what_the_general_one_refuses() -> None:
    rng = random.Random(5)
    values: list[Any] = ["ab", 3, 3.0, 3.5, True, None, [], {}]
    for _ in range(5000):
        spec = {k: rng.choice(values) for k in ("sha", "size", "path") if rng.random() < 0.9}
        doc = {"files": [{"sha": "abc", "size": 1, "path": "p"}, spec]}
        general = shaman_server._schema_problem(doc, "ShamanRequirementsRequest")
        if shaman_server._files_fit(doc["files"]):
            assert general == "", spec
        elif isinstance(spec.get("size"), int | float) and not isinstance(spec["size"], bool):
            assert general or spec["size"] == 3.0, spec  # only 3.0 takes the long way


def test_bulk_lookup_agrees_with_is_stored(any_style_server: ShamanServer) -> None:
    """``unstored`` against ``is_stored`` file by file: stored, deleted, odd checksums,
    float sizes, a path listed twice, and a store folder that is gone."""
    kept, lost = b"kept content", b"lost content"
    for data in (kept, lost):
        assert call(any_style_server, "POST", f"/api/v3/shaman/files/{sha_of(data)}/{len(data)}",
                    data).status in (200, 204)
    any_style_server.stored_path(sha_of(lost), len(lost)).unlink()
    store = any_style_server._store
    files: list[dict[str, Any]] = [
        {"sha": sha_of(kept), "size": len(kept), "path": "k"},
        {"sha": sha_of(lost), "size": float(len(lost)), "path": "l"},
        {"sha": sha_of(kept), "size": float(len(kept)), "path": "k2"},
        {"sha": sha_of(lost), "size": len(lost), "path": "l2"},
        {"sha": "../" + sha_of(kept), "size": len(kept), "path": "x"},
        {"sha": "ab", "size": 1, "path": "y"},
        {"sha": "é" + sha_of(kept)[1:], "size": len(kept), "path": "z"},
        {"sha": "A" * 129, "size": 1, "path": "w"},
    ]
    expected, seen = [], set()
    for spec in files:
        key = (spec["sha"], int(spec["size"]))
        if key not in seen:
            seen.add(key)
            if not store.is_stored(*key):
                expected.append((spec, key))
    assert store.unstored(files) == expected
    assert [spec["path"] for spec, _ in expected] == ["l", "x", "y", "z", "w"]
    assert store.unstored(files, first_only=True) == expected[:1]
    assert store.unstored(files[:4]) == expected[:1]  # every checksum safe: the quick test
    shutil.rmtree(any_style_server.storage / "file-store")
    assert [spec["path"] for spec, _ in store.unstored(files)] == ["k", "l", "x", "y", "z", "w"]
