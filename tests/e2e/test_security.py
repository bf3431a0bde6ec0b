"""Hostile paths and trust (issue 6): nothing the client sends can leave the checkout,
checkout names are sanitised, TLS is verified by default, logs keep secrets out.

The property tests cross-check the ONE place checkout paths are made
(``paths.to_checkout_path``) against three independent gates: the pipeline's plan check,
the client's spec check and the local server's own escape rule, plus what the operating
system would do with the joined path. ``tests/test_paths.py`` covers the POSIX and drive
mappings; here the inputs are Windows, UNC and mixed-separator paths full of look-alikes.
The end-to-end cases run real submissions and read the server's disk back.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import posixpath
import select
import shutil
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path, PureWindowsPath
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shaman_addon.collect.paths import to_checkout_path
from shaman_addon.collect.plan import PackPlan, PlanFile
from shaman_addon.errors import ConfigError, PathTooLong, ServerUnreachable, ShamanError
from shaman_addon.shaman.client import ClientSettings, FileSpec, check_file_spec
from shaman_addon.shaman.protocol import is_safe_checkout_path
from shaman_addon.submit import Submission
from shaman_addon.submit.gathering import check_paths

import blendgen
from blend_templates import Project, Templates
from fault_helpers import Options, check_checkout, disk_state, error_of, wait_for
from shaman_server import file_path_leaves_checkout

FAST = {"backoff_s": 0.01, "max_attempts": 2, "connect_timeout": 2.0}
"""This module's client settings (``Options`` makes them, with the upload strategy)."""

# -- the one place paths are made, against every gate ----------------------------------

HOSTILE = st.sampled_from([
    "..", ".", "", "...", " ..", ".. ", "\\", "/", ":", "C:", "c:", "\\\\srv\\share", "//",
    "\x00", "\x1f", "\x7f", "\u2024\u2024",  # one-dot leaders: look like ..
    "\u2215", "\u2044", "\uff0f", "\uff3c", "\u29f5",  # slash and backslash look-alikes
    "\uff0e\uff0e",  # fullwidth full stops
    "\u202e", "\u200b", "\ufeff", "\udc80", "%2e%2e", "%2F", "..%2F", "CON", "NUL", "a",
])
PART = st.lists(HOSTILE | st.text(min_size=1, max_size=6), min_size=1, max_size=4).map("".join)
WIN_PARTS = st.lists(PART, min_size=1, max_size=6)


def _plan_check(cp: str, source: str) -> None:
    """The submission's check of a finished plan, on a plan holding one file at ``cp``."""
    src = Path(source)
    check_paths(PackPlan(main_blend=src, project_root=src.parent, blend_checkout_path=cp,
                         files=[PlanFile.of(src, cp, 1)]))


def _gates(cp: str, source: str) -> None:
    """Every gate agrees the path is safe, and joined under a checkout it stays there."""
    assert is_safe_checkout_path(cp), repr(cp)
    assert not file_path_leaves_checkout(cp), repr(cp)  # the server's own rule
    _plan_check(cp, source)  # the submission's plan check
    check_file_spec(FileSpec("0" * 64, 1, cp))  # the client's last gate before sending
    assert "\x00" not in cp and "\\" not in cp
    joined = posixpath.normpath(posixpath.join("/jobs/checkout", cp))
    assert joined.startswith("/jobs/checkout/"), (cp, joined)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["C:\\", "z:/", "\\\\srv\\share\\", "//srv/share/", "\\\\?\\C:\\",
                        "\\\\.\\D:\\", "E:\\project\\", "E:/project/"]),
       WIN_PARTS, st.sampled_from(["\\", "/"]))
@example("\\\\srv\\share\\", ["..", "..", "..", "Windows", "system32"], "\\")
@example("E:\\project\\", ["..", "..", "x"], "\\")
@example("\\\\?\\C:\\", ["\x00", "..\\..", "x"], "/")
def test_windows_and_unc_inputs_are_safe_at_every_gate(
    anchor: str, parts: list[str], sep: str
) -> None:
    path = anchor + sep.join(parts)
    for root in (PureWindowsPath("E:\\project"), "E:/project"):
        try:
            cp = to_checkout_path(PureWindowsPath(path), root)
        except PathTooLong:
            continue
        _gates(cp, path)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PART, min_size=1, max_size=7), st.lists(PART, min_size=0, max_size=3))
@example(["..", "..", "etc", "passwd"], [])
@example(["proj", "..", "..", "..", "x"], ["proj"])
@example(["p", "\u2024\u2024", "\uff0f", "x"], ["p"])
def test_posix_inputs_with_a_hostile_project_root_are_safe_at_every_gate(
    parts: list[str], root_parts: list[str]
) -> None:
    parts = [p.replace("/", "\u2215") for p in parts]
    root = "/" + "/".join(p.replace("/", "_") for p in root_parts)
    path = "/" + "/".join(parts)
    try:
        cp = to_checkout_path(path, root)
    except PathTooLong:
        return
    _gates(cp, path)


@settings(max_examples=400)
@given(st.text(min_size=0, max_size=30) | st.lists(HOSTILE, max_size=5).map("/".join))
@example("../x")
@example("a/../../b")
@example("C:/x")
@example("a\\..\\..\\b")
@example("/etc/passwd")
@example("a/\x00/b")
def test_a_hand_made_plan_path_is_refused_unless_every_gate_agrees(cp: str) -> None:
    """A plan not made by ``paths`` (a bug, a hand-edited cache) must still be caught."""
    try:
        _plan_check(cp, "/x")
        check_file_spec(FileSpec("0" * 64, 1, cp))
    except (ShamanError, ConfigError):
        return
    assert not file_path_leaves_checkout(cp), repr(cp)
    joined = posixpath.normpath(posixpath.join("/jobs/checkout", cp))
    assert joined.startswith("/jobs/checkout/"), (cp, joined)


def test_hostile_paths_report_row(fault_row: Callable[..., Any]) -> None:
    """The report row for the fuzzing above, with a few results shown as evidence."""
    samples = {
        "\\\\srv\\share\\..\\..\\Windows\\x.dll": PureWindowsPath(
            "\\\\srv\\share\\..\\..\\Windows\\x.dll"),
        "C:\\..\\..\\boot.ini": PureWindowsPath("C:\\..\\..\\boot.ini"),
        "/etc/../../passwd": "/etc/../../passwd",
        "/p/\u2024\u2024/\uff0f/x": "/p/\u2024\u2024/\uff0f/x",
        "/p/a\x00b": "/p/a\x00b",
    }
    shown = []
    for label, src in samples.items():
        cp = to_checkout_path(src, "/p" if isinstance(src, str) else PureWindowsPath("E:\\p"))
        _gates(cp, label)
        shown.append(f"{label!r} -> {cp!r}")
    fault_row("hostile source paths (.. chains, drives, UNC, NUL, look-alikes) -> checkout "
              "paths; hypothesis, ~1,400 examples in 3 properties", area="security",
              saw="; ".join(shown),
              end_state="every result passes protocol.is_safe_checkout_path, the submission's plan "
              "check, the client's spec check and the server's escape rule, and stays inside "
              "when joined; hand-made unsafe plan paths are refused before sending")


# -- a lenient server, a real production with outside files --------------------------------


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_nothing_is_written_outside_the_checkout_on_a_lenient_server(
    shaman_server_factory: Callable[..., Any], every_kind_production: blendgen.ProductionInfo,
    tmp_path: Path, opts: Options, fault_row: Callable[..., Any],
) -> None:
    server = shaman_server_factory("manager", strict_paths=False, storage=tmp_path / "srv" / "s")
    before_parent = _tree(tmp_path / "srv")
    result = Submission(every_kind_production.main_blend, opts(
        server.url, tmp_path, client=FAST, checkout_template="../../{blend_name}")).run()
    after = _tree(tmp_path / "srv")
    new = after - before_parent
    checkout_dir = f"s/jobs/{result.checkout_path}"
    outside = sorted(p for p in new if not (
        p.startswith("s/file-store/stored") or p == "s/jobs"
        or p == checkout_dir or p.startswith(checkout_dir + "/")
        or checkout_dir.startswith(p + "/")))
    assert outside == [], outside
    links = [p for p in (server.storage / "jobs" / result.checkout_path).rglob("*")
             if p.is_symlink()]
    stored = (server.storage / "file-store" / "stored").resolve()
    for link in links:
        assert link.resolve().is_relative_to(stored), link
    outside_files = [p for p in new if "_outside_project" in p]
    assert outside_files, "the production has files outside the project"
    fault_row("every-kind production (outside-project and '..' paths) against a server that "
              "does NOT check file paths (like a real Manager); template '../../{blend_name}'",
              area="security", saw=f"done: checkout {result.checkout_path}",
              end_state=f"{len(new)} new paths on the server's side, all under file-store/stored "
              f"or jobs/{result.checkout_path}/ ({len(links)} links, each into the store; "
              f"outside files under _outside_project/)")


# -- checkout names ----------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["../..//", "..:?*;{{}}\\/.", "/../../etc/{blend_name}",
                                      "{blend_name}/../../../x", " \x00\x1f/ "])
def test_checkout_names_are_sanitised(
    shaman_server: Any, blend_templates: Templates, tmp_path: Path, opts: Options,
    fault_row: Callable[..., Any], template: str,
) -> None:
    files = Project(blend_templates, tmp_path, [10, 20])
    result = Submission(files.blend, opts(shaman_server.url, tmp_path, client=FAST,
                                          checkout_template=template)).run()
    cp = result.checkout_path
    jobs = (shaman_server.storage / "jobs").resolve()
    assert (jobs / cp).resolve().is_relative_to(jobs)
    assert ".." not in cp.split("/") and not cp.startswith("/")
    check_checkout(shaman_server.storage, cp, files.expected())
    fault_row(f"checkout path template {template!r}", area="security",
              saw=f"done: checkout {cp}",
              end_state=f"jobs/{cp} inside jobs/, complete"
              + ("; sanitised to nothing -> the default template" if cp.startswith("shot-")
                 and "{blend_name}" not in template else ""))


# -- TLS ------------------------------------------------------------------------------------------


class TlsFront:
    """A TLS front door for the plain local server (as a studio's reverse proxy would be):
    each accepted TLS connection is piped to the server in both directions."""

    def __init__(self, backend_port: int, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.backend_port = backend_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}"
        self.handshakes_failed = 0
        self._stop = False
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshakes_failed += 1
            conn.close()
            return
        back = socket.create_connection(("127.0.0.1", self.backend_port))
        self._open.append(back)
        # One thread moves bytes both ways: an SSL socket must not be read and written
        # from two threads at once. After select, TLS input is drained without blocking:
        # OpenSSL may already hold whole records the socket no longer shows as readable.
        try:
            while True:
                ready = select.select([tls, back], [], [], 60)[0]
                if not ready:
                    break
                if tls in ready:
                    tls.setblocking(False)
                    closed = False
                    try:
                        while True:
                            data = tls.recv(1 << 16)
                            if not data:
                                closed = True
                                break
                            back.sendall(data)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        pass
                    finally:
                        tls.setblocking(True)
                    if closed:
                        break
                if back in ready:
                    data = back.recv(1 << 16)
                    if not data:
                        break
                    tls.sendall(data)
        except OSError:
            pass
        finally:
            tls.close()
            back.close()

    def close(self) -> None:
        """Stop accepting and cut every piped connection (the server waits for them)."""
        self._stop = True
        self.listener.close()
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def tls_front(shaman_server: Any, tls_cert: tuple[Path, Path]) -> Iterator[TlsFront]:
    front = TlsFront(int(shaman_server.url.rsplit(":", 1)[1]), *tls_cert)
    yield front
    front.close()


@pytest.mark.local_server_only
def test_tls_is_verified_by_default_and_a_ca_bundle_is_used(
    shaman_server: Any, tls_front: TlsFront, tls_cert: tuple[Path, Path],
    blend_templates: Templates, tmp_path: Path, opts: Options, fault_row: Callable[..., Any],
) -> None:
    files = Project(blend_templates, tmp_path, [1000 + i * 5000 for i in range(8)])
    assert ClientSettings().verify_tls is True
    err = error_of(lambda: Submission(files.blend, opts(tls_front.url, tmp_path,
                                                        client=FAST)).run())
    assert isinstance(err, ServerUnreachable), repr(err)
    assert "CA bundle" in str(err) and tls_front.url in str(err)
    wait_for(lambda: tls_front.handshakes_failed >= 1, "the refused handshake seen by the server")
    assert sum(shaman_server.counters.requests.values()) == 0
    # Parallel uploads, each on a fresh TLS connection: none may stall (a stalled body
    # would hit the read timeout and be sent again).
    result = Submission(files.blend, opts(
        tls_front.url, tmp_path, jobs=4,
        client={"backoff_s": 0.01, "read_timeout": 5, "ca_bundle": str(tls_cert[0])})).run()
    n = check_checkout(shaman_server.storage, result.checkout_path, files.expected())
    uploads = shaman_server.counters.requests["upload"]
    assert uploads == len(files.content_keys()), shaman_server.counters.statuses
    fault_row("https with a self-signed certificate: default settings, then with the CA bundle",
              area="security", saw=f"default: {err} | with ca_bundle: done, checkout "
              f"{result.checkout_path}",
              end_state=f"default: TLS refused, no request reached the server; with the "
              f"bundle: {uploads} parallel uploads, none stalled or repeated; checkout of {n} "
              "files correct")


# -- what the logs hold -------------------------------------------------------------------------


@pytest.mark.local_server_only
def test_no_credentials_or_unrelated_paths_in_logs_errors_or_history(
    shaman_server: Any, basic_production: blendgen.ProductionInfo, tmp_path: Path,
    opts: Options, caplog: pytest.LogCaptureFixture, fault_row: Callable[..., Any],
) -> None:
    root = tmp_path / "prod"
    shutil.copytree(basic_production.root, root, symlinks=True)
    main = root / basic_production.main_blend.relative_to(basic_production.root)
    diary = root / "project" / "private" / "diary with secrets.txt"  # not a dependency
    diary.parent.mkdir()
    diary.write_text("nobody's business")
    secret = "s3cr3t-pa55"
    caplog.set_level(logging.DEBUG)
    # 1. A password in the URL: refused (a Manager has no login), and never repeated.
    with_password = shaman_server.url.replace("http://", f"http://render:{secret}@")
    refused = error_of(lambda: Submission(main, opts(with_password, tmp_path,
                                                     client=FAST)).run())
    assert isinstance(refused, ConfigError), repr(refused)
    # 2. A run with a retried 502 and a failed checkout, logging at DEBUG.
    shaman_server.faults.fail_next("requirements", count=1, status=502, message="hiccup")
    shaman_server.faults.fail_next("create", count=1, status=500, message="disk full")
    err = error_of(lambda: Submission(main, opts(shaman_server.url, tmp_path,
                                                 client=FAST)).run())
    assert isinstance(err, ShamanError), repr(err)
    history = (tmp_path / "cache" / "history.jsonl").read_text()
    texts = {"logs": caplog.text, "errors": f"{refused}\n{err}", "history": history}
    leaks = {k: v for k, v in texts.items() if secret in v}
    unrelated = {k: v for k, v in texts.items() if str(diary) in v or diary.name in v}
    assert leaks == {}, leaks
    assert unrelated == {}, unrelated
    assert sum(shaman_server.counters.requests.values()) >= 3
    records = len(caplog.records)
    fault_row("server URL with a password (user:pass@host); then a run with a retried 502 and "
              "a failed checkout; a private file in the project", area="security",
              saw=f"{refused} | {err}",
              end_state=f"the password appears in none of {records} log records (DEBUG), the "
              "errors or the history file; the unrelated file's path appears nowhere")


# -- the local server itself ------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../escaped.txt", "/etc/evil.txt", "C:/evil.txt",
                                 "a\\..\\..\\evil.txt", "ok/../../../evil.txt"])
def test_local_server_refuses_escaping_checkout_paths(
    shaman_server_factory: Callable[..., Any], tmp_path: Path,
    fault_row: Callable[..., Any], bad: str,
) -> None:
    server = shaman_server_factory("manager", storage=tmp_path / "srv" / "s")
    data = b"payload"
    sha, size = sha_of_bytes(data)
    conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=30)
    conn.request("POST", f"/api/v3/shaman/files/{sha}/{size}", body=data,
                 headers={"Content-Type": "application/octet-stream"})
    assert conn.getresponse().read() == b""
    before = _tree(tmp_path / "srv")
    body = json.dumps({"checkoutPath": "job", "files": [
        {"sha": sha, "size": size, "path": "fine.txt"},
        {"sha": sha, "size": size, "path": bad}]})
    conn.request("POST", "/api/v3/shaman/checkout/create", body=body,
                 headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    text = reply.read().decode()
    conn.close()
    assert reply.status == 400, text
    assert _tree(tmp_path / "srv") == before
    assert disk_state(server.storage).checkouts == []
    fault_row(f"the local test server given checkout file path {bad!r} (raw HTTP)",
              area="security", saw=f"{reply.status} {json.loads(text)['message']}",
              end_state="nothing written anywhere: the storage tree is unchanged, no checkout")


def sha_of_bytes(data: bytes) -> tuple[str, int]:
    return hashlib.sha256(data).hexdigest(), len(data)
