"""Faults (issue 6): the real pipeline against the local Shaman server's fault injection,
over real HTTP on loopback. Every test reads the end state back: what is stored under
``file-store/stored``, what is under ``jobs/``, that ``file-store/uploading`` holds no
leftovers of finished uploads, that no temporary rewritten copy is left, and that the
checksum cache holds only true checksums. Each adds a row to the fault report.

Every submission goes through the public API and collects its .blend like the command
line does: most cases use a real template .blend (``blend_templates``) whose cache folder
takes whatever files the test writes; the ``lib_files`` cases add a linked library that
the collector rewrites, so a temporary copy exists and must be cleaned up; the
cancel-in-every-phase cases run on a generated production. Client settings come from
the ``opts`` fixture (``conftest.py``) only. Timing is never asserted: ordering comes from
progress events and server counters.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shaman_addon.errors import (
    Cancelled,
    CheckoutAnswerLost,
    LocalFileChanged,
    ServerError,
    ServerTimeout,
    ServerUnreachable,
    ShamanDisabled,
    ShamanError,
)
from shaman_addon.progress import Phase
from shaman_addon.submit import Submission, Tuning
from shaman_addon.submit import checksums as checksums_mod

from blend_templates import Project, Templates
from fault_helpers import (
    Background,
    Options,
    PhaseHook,
    blend_paths_stay_inside,
    cache_state,
    cancel_from_another_thread,
    check_checkout,
    disk_state,
    error_of,
    pack_leftovers,
    sha_of,
    wait_for,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def end_state(storage: Path, cache_dir: Path, private_tmp: Path | None = None) -> str:
    """Read the end state, assert the invariants that always hold, and describe it:
    no upload temp file left on the server, a sound cache and, given the test's private
    temp folder, no temporary rewritten copy (``shaman-pack-*``) left in it."""
    uploading_settled(storage)
    state = disk_state(storage)
    rows, checked = cache_state(cache_dir)
    text = f"{state.describe()}; cache {rows} rows ({checked} verified against the files)"
    if private_tmp is not None:
        left = pack_leftovers(private_tmp)
        assert left == [], f"temporary copies left: {left}"
        text += "; temp copy removed"
    return text


def uploading_settled(storage: Path) -> None:
    """The server cleans an interrupted upload's temp file when it notices the drop."""
    wait_for(lambda: not disk_state(storage).uploading, "file-store/uploading emptied")


# -- the server is not there ------------------------------------------------------------


def test_server_down_at_start(lib_files: Project, tmp_path: Path, private_tmp: Path,
                              opts: Options, fault_row: Callable[..., Any]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    err = error_of(lambda: Submission(lib_files.blend, opts(url, tmp_path)).run())
    assert isinstance(err, ServerUnreachable), repr(err)
    assert url in str(err)
    assert pack_leftovers(private_tmp) == []
    rows, checked = cache_state(tmp_path / "cache")
    record = json.loads((tmp_path / "cache" / "history.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "failed" and url in record["error"]
    fault_row("server down at the start (port with nothing listening)", saw=str(err),
              end_state=f"nothing on any server; temp copy removed; cache {rows} rows "
              f"({checked} verified); history says failed")


# -- the server process dies --------------------------------------------------------------


def _counters(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/test/counters", timeout=30) as answer:
        return json.loads(answer.read())


def _fault(url: str, call: str, **kwargs: Any) -> None:
    body = json.dumps({"call": call, "kwargs": kwargs}).encode()
    req = urllib.request.Request(url + "/test/fault", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as answer:
        assert answer.status == 204


@pytest.mark.local_server_only
def test_server_killed_mid_upload_then_next_run_sends_only_the_rest(
    server_process: Callable[..., Any], blend_templates: Templates, tmp_path: Path,
    private_tmp: Path, opts: Options, fault_row: Callable[..., Any]
) -> None:
    files = Project(blend_templates, tmp_path, [400_000 + i for i in range(30)], seed="kill",
                    variant="library")
    cache = tmp_path / "cache"
    proc = server_process()
    _fault(proc.url, "delay", endpoint="upload", seconds=0.05)  # slow enough to kill mid-way
    client = {"backoff_s": 0.01, "max_attempts": 2, "connect_timeout": 2.0}
    run = Background(Submission(files.blend, opts(proc.url, tmp_path, jobs=2, client=client)))
    wait_for(lambda: len(disk_state(proc.storage).stored) >= 8, "8 files stored")
    proc.kill()
    run.join()
    first = run.error
    assert isinstance(first, ShamanError), repr(first)
    assert proc.url in str(first)
    before = disk_state(proc.storage)
    assert len(before.stored) >= 8 and before.checkouts == []
    assert pack_leftovers(private_tmp) == []

    proc.start()  # same port, same storage
    assert proc.url == run.sub.options.server_url
    result = Submission(files.blend, opts(proc.url, tmp_path)).run()
    received = {(sha, size) for sha, size, _n in _counters(proc.url)["bytes_received_by_file"]}
    wanted = files.content_keys(cache)  # the rewritten library: the copy kept in the cache
    assert len(before.stored) < len(wanted)  # the kill did cut the first run short
    assert received == wanted - before.stored
    assert pack_leftovers(private_tmp) == []
    after = disk_state(proc.storage)
    assert after.checkouts == [result.checkout_path.split("/")[0]]
    # the upload cut off by the kill may have left its temp file; its content is stored now
    for leftover in after.uploading:
        sha, size = leftover.split("-")[:2]
        assert (sha, int(size)) in after.stored and (sha, int(size)) not in before.stored
    n = check_checkout(proc.storage, result.checkout_path, files.expected(cache))
    assert blend_paths_stay_inside(proc.storage, result.checkout_path) > 0
    fault_row("server PROCESS killed (SIGKILL) mid-upload, restarted on the same port+storage",
              saw=f"first run: {first}; next run: done, checkout {result.checkout_path}",
              end_state=f"after the kill {len(before.stored)} blobs stored, no checkout; the "
              f"next run sent exactly the {len(received)} missing contents; checkout of {n} "
              f"files, bytes equal through the symlinks; {len(after.uploading)} stale temp "
              "file(s) of the killed upload in uploading/ (content since stored)",
              measured={"stored_before": len(before.stored), "sent_next_run": len(received)})


@pytest.mark.local_server_only
def test_server_restarted_within_the_retry_budget_recovers(
    server_process: Callable[..., Any], blend_templates: Templates, tmp_path: Path,
    opts: Options, fault_row: Callable[..., Any]
) -> None:
    files = Project(blend_templates, tmp_path, [300_000 + i for i in range(24)], seed="restart")
    proc = server_process()
    _fault(proc.url, "delay", endpoint="upload", seconds=0.05)
    client = {"backoff_s": 0.25, "max_attempts": 7, "connect_timeout": 2.0}
    run = Background(Submission(files.blend, opts(proc.url, tmp_path, jobs=2, client=client)))
    wait_for(lambda: len(disk_state(proc.storage).stored) >= 6, "6 files stored")
    stored_at_kill = len(disk_state(proc.storage).stored)
    proc.restart()
    run.join()
    assert run.error is None, repr(run.error)
    result = run.result
    assert result is not None
    n = check_checkout(proc.storage, result.checkout_path, files.expected())
    state = disk_state(proc.storage)
    assert state.stored >= files.content_keys()
    fault_row("server process killed and restarted within the client's retry budget",
              saw=f"done: checkout {result.checkout_path} ({result.files_uploaded} uploaded)",
              end_state=f"{stored_at_kill} blobs stored at the kill; checkout of {n} files "
              f"complete with the right bytes; {len(state.uploading)} stale temp file(s)")


# -- connections dropped ----------------------------------------------------------------


@pytest.mark.local_server_only
def test_connection_dropped_mid_body(shaman_server: Any, files: Project, opts: Options,
                                     tmp_path: Path, fault_row: Callable[..., Any]) -> None:
    shaman_server.faults.drop_upload_after(150_000, count=3)
    result = Submission(files.blend, opts(shaman_server.url, tmp_path, jobs=2)).run()
    counters = shaman_server.counters
    n = check_checkout(shaman_server.storage, result.checkout_path, files.expected())
    uploading_settled(shaman_server.storage)
    assert counters.requests.get("file_status", 0) >= 3  # the status was asked each time
    fault_row("connection reset mid-body (3 uploads cut at 150 kB)",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"status asked {counters.requests['file_status']}x; checkout of {n} "
              "files with the right bytes; uploading/ empty; "
              + end_state(shaman_server.storage, tmp_path / "cache"))


@pytest.mark.local_server_only
def test_other_client_finished_first_early_208_then_drop(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path, fault_row: Callable[..., Any]
) -> None:
    shaman_server.faults.early_208_and_drop(count=2)
    result = Submission(files.blend, opts(shaman_server.url, tmp_path)).run()
    n = check_checkout(shaman_server.storage, result.checkout_path, files.expected())
    st = shaman_server.counters.statuses
    assert st.get(("upload", 208)) == 2
    fault_row("another client 'finished first': early 208 then the connection dropped (x2)",
              saw=f"done: checkout {result.checkout_path}",
              end_state="208 not trusted: status asked "
              f"{shaman_server.counters.requests.get('file_status', 0)}x, "
              f"content sent again; checkout of {n} files correct; "
              + end_state(shaman_server.storage, tmp_path / "cache"))


# -- transient and persistent failures per endpoint ---------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "status", "message"),
    [
        ("requirements", 502, "bad gateway"),
        ("requirements", 504, "gateway timeout"),
        ("requirements", 503, "busy, try later"),
        ("upload", 500, "disk hiccup"),
        ("upload", 502, "bad gateway"),
        ("file_status", 502, "bad gateway"),
    ],
)
@pytest.mark.local_server_only
def test_transient_failure_is_retried_and_succeeds(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any], endpoint: str, status: int, message: str,
) -> None:
    faults = shaman_server.faults
    if endpoint == "file_status":
        faults.drop_upload_after(1000)  # a reset makes the client ask the file's status
    faults.fail_next(endpoint, count=2, status=status, message=message)
    result = Submission(files.blend, opts(shaman_server.url, tmp_path, jobs=1)).run()
    counters = shaman_server.counters
    assert counters.statuses.get((endpoint, status)) == 2
    n = check_checkout(shaman_server.storage, result.checkout_path, files.expected())
    uploading_settled(shaman_server.storage)
    sent_once = sum(size for _sha, size in files.content_keys())
    assert counters.bytes_received <= sent_once + 1000, (  # + the body cut off once
        {key: n for key, n in counters.bytes_received_by_file.items() if n != key[1]},
        counters.statuses)
    fault_row(f"transient {status} on {endpoint} (twice)",
              saw=f"done after retries: checkout {result.checkout_path}",
              end_state=f"{endpoint} asked {counters.requests[endpoint]}x; checkout of {n} "
              "files correct; " + end_state(shaman_server.storage, tmp_path / "cache"))


@pytest.mark.parametrize(
    ("endpoint", "status", "message"),
    [
        ("requirements", 502, "upstream manager unreachable"),
        ("upload", 500, "no space left on device"),
        ("requirements", 500, "database is locked"),  # 500 with a message: never retried
    ],
)
@pytest.mark.local_server_only
def test_persistent_failure_stops_after_bounded_tries_with_the_servers_words(
    shaman_server: Any, lib_files: Project, opts: Options, tmp_path: Path, private_tmp: Path,
    fault_row: Callable[..., Any], endpoint: str, status: int, message: str,
) -> None:
    shaman_server.faults.fail_next(endpoint, count=1000, status=status, message=message)
    err = error_of(lambda: Submission(lib_files.blend,
                                      opts(shaman_server.url, tmp_path, jobs=1)).run())
    assert isinstance(err, ServerError), repr(err)
    assert message in str(err) and shaman_server.url in str(err)
    tries = shaman_server.counters.requests[endpoint]
    limit = opts.fast.max_attempts if (endpoint, status) != ("requirements", 500) else 1
    assert tries <= limit * (Tuning().max_resets_per_file + 1)
    if endpoint == "requirements":
        assert tries == limit
    state = disk_state(shaman_server.storage)
    assert state.checkouts == [] and state.uploading == []
    fault_row(f"persistent {status} '{message}' on {endpoint}", saw=str(err),
              end_state=f"{tries} tries then stop; no checkout; "
              + end_state(shaman_server.storage, tmp_path / "cache", private_tmp),
              measured={"tries": tries})


@pytest.mark.local_server_only
def test_checkout_create_error_is_not_repeated(
    any_style_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any],
) -> None:
    server = any_style_server
    server.faults.fail_next("create", count=1, status=502, message="bad gateway")
    err = error_of(lambda: Submission(files.blend, opts(server.url, tmp_path)).run())
    assert isinstance(err, ServerError), repr(err)
    assert server.counters.requests["create"] == 1
    state = disk_state(server.storage)
    assert state.checkouts == [] and state.stored >= files.content_keys()
    fault_row(f"502 on checkout/create ({server.style} style)", saw=str(err),
              end_state="create sent once, not repeated; no checkout; "
              + end_state(server.storage, tmp_path / "cache"))


@pytest.mark.local_server_only
def test_checkout_answer_lost_is_reported_not_repeated(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path, fault_row: Callable[..., Any]
) -> None:
    # The server makes the checkout, then holds the answer past the read timeout.
    shaman_server.faults.delay("create", 30)
    err = error_of(lambda: Submission(
        files.blend, opts(shaman_server.url, tmp_path, checkout_template="lost/answer",
                          client={"backoff_s": 0.01, "read_timeout": 1.0})).run())
    shaman_server.faults.reset()  # let the held answer go
    assert isinstance(err, CheckoutAnswerLost), repr(err)
    assert "lost/answer" in str(err)
    assert shaman_server.counters.requests["create"] == 1
    state = disk_state(shaman_server.storage)
    assert state.checkouts == ["lost"]  # exactly one checkout, never a '-xxxx' twin
    assert [p for p in state.jobs_entries if p.count("/") == 1] == ["lost/answer"]
    fault_row("checkout/create answer lost (made on the server, answer held past the "
              "read timeout)", saw=str(err),
              end_state="create sent once; exactly one checkout (jobs/lost/answer), no second "
              "'-xxxx' one; " + end_state(shaman_server.storage, tmp_path / "cache"))


# -- a server that hangs ------------------------------------------------------------------


@pytest.mark.local_server_only
def test_hanging_server_times_out_with_a_clear_message(
    shaman_server: Any, lib_files: Project, opts: Options, tmp_path: Path, private_tmp: Path,
    fault_row: Callable[..., Any]
) -> None:
    shaman_server.faults.hang_next("requirements", count=10)
    client = {"backoff_s": 0.01, "read_timeout": 0.5, "max_attempts": 2}
    err = error_of(lambda: Submission(
        lib_files.blend, opts(shaman_server.url, tmp_path, client=client)).run())
    shaman_server.faults.reset()
    assert isinstance(err, ServerTimeout), repr(err)
    assert "read timeout" in str(err) and shaman_server.url in str(err)
    assert shaman_server.counters.requests["requirements"] == 2
    fault_row("server accepts and never answers (requirements), read timeout 0.5 s",
              saw=str(err), end_state="2 tries, then the timeout is named; no checkout; "
              + end_state(shaman_server.storage, tmp_path / "cache", private_tmp))


@pytest.mark.parametrize("endpoint", ["requirements", "upload"])
@pytest.mark.local_server_only
def test_cancel_while_the_server_hangs(
    shaman_server: Any, lib_files: Project, opts: Options, tmp_path: Path, private_tmp: Path,
    fault_row: Callable[..., Any], endpoint: str,
) -> None:
    shaman_server.faults.hang_next(endpoint, count=100)
    sub = Submission(lib_files.blend, opts(shaman_server.url, tmp_path,
                                           client={"read_timeout": 600}))
    run = Background(sub)
    wait_for(lambda: shaman_server.counters.requests.get(endpoint, 0) >= 1,
             f"the {endpoint} request reached the hanging server")
    assert not run.done.is_set()
    cancel_from_another_thread(sub)
    run.join()
    shaman_server.faults.reset()
    assert isinstance(run.error, Cancelled), repr(run.error)
    uploading_settled(shaman_server.storage)
    assert disk_state(shaman_server.storage).checkouts == []
    fault_row(f"cancel while the server hangs on {endpoint} (read timeout 600 s)",
              saw=str(run.error), end_state="run returned on cancel, no checkout; "
              + end_state(shaman_server.storage, tmp_path / "cache", private_tmp))


# -- Shaman switched off ------------------------------------------------------------------


@pytest.mark.local_server_only
def test_shaman_disabled_is_one_message_no_retry_storm(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path, fault_row: Callable[..., Any]
) -> None:
    shaman_server.faults.shaman_disabled = True
    err = error_of(lambda: Submission(files.blend, opts(shaman_server.url, tmp_path)).run())
    assert isinstance(err, ShamanDisabled), repr(err)
    total = sum(shaman_server.counters.requests.values())
    assert total == 1, shaman_server.counters.requests
    fault_row("503 'shaman server not active'", saw=str(err),
              end_state=f"{total} request in all; "
              + end_state(shaman_server.storage, tmp_path / "cache"),
              measured={"requests": total})


# -- files that change or vanish ------------------------------------------------------------


def _rewrite_keep_stat(path: Path, data: bytes) -> None:
    """New bytes, same size and mtime: invisible to a local check, only the server sees it."""
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("how", ["grows", "same size, same mtime (only the server sees it)"])
@pytest.mark.local_server_only
def test_dependency_changes_between_hashing_and_upload(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any], how: str,
) -> None:
    target = files.files[7]
    old = sha_of(target)

    def change() -> None:
        if how == "grows":
            with target.open("ab") as f:
                f.write(b"more pixels")
        else:
            data = bytearray(target.read_bytes())
            data[100] ^= 0xFF
            _rewrite_keep_stat(target, bytes(data))

    hook = PhaseHook(Phase.CHECKING, change)  # hashed, not yet sent
    result = Submission(files.blend, opts(shaman_server.url, tmp_path), events=hook).run()
    assert hook.fired.is_set()
    new = sha_of(target)
    assert new != old
    state = disk_state(shaman_server.storage)
    assert new in state.stored
    n = check_checkout(shaman_server.storage, result.checkout_path, files.expected())
    st417 = shaman_server.counters.statuses.get(("upload", 417), 0)
    fault_row(f"dependency changes after hashing, before upload: {how}",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"417 seen {st417}x; re-hashed, the checkout's bytes are the file's "
              f"FINAL bytes ({n} files checked); old content stored: {old in state.stored}; "
              + end_state(shaman_server.storage, tmp_path / "cache"))


def test_dependency_changes_while_being_hashed(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = files.files[12]
    real = checksums_mod.sha256_file
    calls: list[Path] = []

    def hashing_then_written(path: Path, **kw: Any) -> Any:
        out = real(path, **kw)
        calls.append(Path(path))
        if Path(path) == target and calls.count(target) == 1:
            with target.open("ab") as f:  # someone saves while we read
                f.write(b"saved again")
        return out

    monkeypatch.setattr(checksums_mod, "sha256_file", hashing_then_written)
    result = Submission(files.blend, opts(shaman_server.url, tmp_path)).run()
    assert calls.count(target) == 2  # seen changing, hashed once more
    n = check_checkout(shaman_server.storage, result.checkout_path, files.expected())
    fault_row("dependency written to while it is being hashed",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"hashed {calls.count(target)}x; checkout of {n} files holds the final "
              "bytes; " + end_state(shaman_server.storage, tmp_path / "cache"))


def test_dependency_deleted_between_collecting_and_uploading(
    shaman_server: Any, lib_files: Project, opts: Options, tmp_path: Path, private_tmp: Path,
    fault_row: Callable[..., Any]
) -> None:
    target = lib_files.files[5]
    before = disk_state(shaman_server.storage).checkouts  # another server's store: not []
    hook = PhaseHook(Phase.CHECKING, target.unlink)
    err = error_of(lambda: Submission(lib_files.blend, opts(shaman_server.url, tmp_path),
                                      events=hook).run())
    assert isinstance(err, LocalFileChanged), repr(err)
    assert str(target) in str(err)
    uploading_settled(shaman_server.storage)
    state = disk_state(shaman_server.storage)
    assert state.checkouts == before  # no new checkout
    fault_row("dependency deleted after collecting (hashed), before its upload", saw=str(err),
              end_state="named the file; no checkout; "
              + end_state(shaman_server.storage, tmp_path / "cache", private_tmp))


@pytest.mark.local_server_only
def test_dependency_deleted_before_hashing(
    shaman_server: Any, lib_files: Project, opts: Options, tmp_path: Path, private_tmp: Path,
    fault_row: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = lib_files.files[3]
    real = checksums_mod.sha256_file

    def deleted_just_before(path: Path, **kw: Any) -> Any:
        if Path(path) == target and target.exists():  # collected, now about to be hashed
            target.unlink()
        return real(path, **kw)

    monkeypatch.setattr(checksums_mod, "sha256_file", deleted_just_before)
    err = error_of(lambda: Submission(lib_files.blend, opts(shaman_server.url, tmp_path)).run())
    assert isinstance(err, LocalFileChanged), repr(err)
    assert str(target) in str(err)
    assert sum(shaman_server.counters.requests.values()) == 0
    fault_row("dependency deleted after collecting, before hashing", saw=str(err),
              end_state="named the file; nothing sent; "
              + end_state(shaman_server.storage, tmp_path / "cache", private_tmp))


# -- someone else is uploading --------------------------------------------------------------


@pytest.mark.local_server_only
def test_425_for_a_while_then_stored(shaman_server: Any, files: Project, opts: Options,
                                     tmp_path: Path, fault_row: Callable[..., Any]) -> None:
    key = sha_of(files.files[9])
    shaman_server.faults.report_uploading(*key, calls=3)
    result = Submission(files.blend, opts(shaman_server.url, tmp_path)).run()
    counters = shaman_server.counters
    n = check_checkout(shaman_server.storage, result.checkout_path, files.expected())
    deferred = counters.statuses.get(("upload", 425), 0)
    fault_row("425: another client 'uploading' the same file for 3 requirement rounds",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"425 x{deferred}, {counters.requests['requirements']} requirements "
              f"calls, then sent; checkout of {n} files correct; "
              + end_state(shaman_server.storage, tmp_path / "cache"))


# -- checkout collisions and missing files -----------------------------------------------------


@pytest.mark.local_server_only
def test_checkout_name_collision(any_style_server: Any, files: Project, opts: Options,
                                 tmp_path: Path, fault_row: Callable[..., Any]) -> None:
    server = any_style_server
    o = opts(server.url, tmp_path, checkout_template="shots/fixed name")
    first = Submission(files.blend, o).run()
    second = Submission(files.blend, o).run()
    assert first.checkout_path == "shots/fixed name"
    assert second.checkout_path != first.checkout_path
    assert second.checkout_path.startswith("shots/fixed name-")
    for r in (first, second):
        check_checkout(server.storage, r.checkout_path, files.expected())
    answers = sorted(k[1] for k in server.counters.statuses if k[0] == "create")
    fault_row(f"checkout name collision ({server.style} style)",
              saw=f"second run: checkout {second.checkout_path}",
              end_state=f"two complete checkouts ({first.checkout_path!r}, "
              f"{second.checkout_path!r}); create answers {answers}; "
              + end_state(server.storage, tmp_path / "cache"))


@pytest.mark.local_server_only
def test_missing_files_at_checkout(any_style_server: Any, files: Project, opts: Options,
                                   tmp_path: Path, fault_row: Callable[..., Any]) -> None:
    server = any_style_server
    victim = sha_of(files.files[2])

    def lose_a_blob() -> None:  # garbage-collected between requirements and create
        server.stored_path(*victim).unlink()

    hook = PhaseHook(Phase.CHECKING_OUT, lose_a_blob)
    result = Submission(files.blend, opts(server.url, tmp_path), events=hook).run()
    assert hook.fired.is_set()
    st = server.counters.statuses
    refused = st.get(("create", 424), 0) + st.get(("create", 500), 0)
    assert refused == 1
    n = check_checkout(server.storage, result.checkout_path, files.expected())
    fault_row(f"a blob vanishes before checkout/create ({server.style} style)",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"create refused once ({'424' if server.style == 'spec' else '500'}), "
              f"the file sent again, checkout of {n} files correct; "
              + end_state(server.storage, tmp_path / "cache"))


# -- not JSON at all ---------------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "status", "count"),
                         [("requirements", 413, 1), ("upload", 502, 1000),
                          ("create", 502, 1)])
@pytest.mark.local_server_only
def test_html_error_pages_are_clear_errors(
    shaman_server: Any, lib_files: Project, opts: Options, tmp_path: Path, private_tmp: Path,
    fault_row: Callable[..., Any], endpoint: str, status: int, count: int,
) -> None:
    shaman_server.faults.html_next(endpoint, count=count, status=status)
    err = error_of(lambda: Submission(lib_files.blend,
                                      opts(shaman_server.url, tmp_path, jobs=1)).run())
    assert isinstance(err, ShamanError), repr(err)
    text = str(err)
    assert str(status) in text and shaman_server.url in text
    assert "<html" not in text.lower() and "Traceback" not in text
    tries = shaman_server.counters.requests[endpoint]
    assert disk_state(shaman_server.storage).checkouts == []
    fault_row(f"HTML {status} page from a proxy on {endpoint}", saw=text,
              end_state=f"{tries} tries; no checkout; "
              + end_state(shaman_server.storage, tmp_path / "cache", private_tmp),
              measured={"tries": tries})


# -- cancel in every phase -----------------------------------------------------------------------


@pytest.fixture
def blend_copy(basic_production: Any, tmp_path: Path) -> Path:
    """A private copy of the small real production (its .blend files rewritten on send)."""
    root = tmp_path / "prod"
    shutil.copytree(basic_production.root, root, symlinks=True)
    return root / basic_production.main_blend.relative_to(basic_production.root)


@pytest.mark.parametrize("phase", [Phase.COLLECTING, Phase.HASHING, Phase.CHECKING,
                                   Phase.UPLOADING, Phase.CHECKING_OUT])
@pytest.mark.local_server_only
def test_cancel_in_every_phase(
    shaman_server: Any, blend_copy: Path, tmp_path: Path, private_tmp: Path, opts: Options,
    fault_row: Callable[..., Any], phase: Phase,
) -> None:
    holder: list[Submission] = []
    hook = PhaseHook(phase, lambda: cancel_from_another_thread(holder[0]))
    sub = Submission(blend_copy, opts(shaman_server.url, tmp_path), events=hook)
    holder.append(sub)
    err = error_of(sub.run)
    assert hook.fired.is_set(), hook.phases
    assert isinstance(err, Cancelled), repr(err)
    assert hook.phases[-1] is Phase.CANCELLED
    uploading_settled(shaman_server.storage)
    state = disk_state(shaman_server.storage)
    assert state.checkouts == []
    assert "create" not in shaman_server.counters.requests
    left = pack_leftovers(private_tmp)
    assert left == [], left
    fault_row(f"cancel while {phase.value}", saw=str(err),
              end_state="no checkout, create never sent; no shaman-pack-* temp copies; "
              + end_state(shaman_server.storage, tmp_path / "cache"))


# -- what a person at a terminal sees -----------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "status"), [("requirements", 502), ("upload", 413)])
@pytest.mark.local_server_only
def test_command_line_shows_a_sentence_not_a_traceback(
    shaman_server: Any, blend_copy: Path, tmp_path: Path, fault_row: Callable[..., Any],
    endpoint: str, status: int,
) -> None:
    shaman_server.faults.html_next(endpoint, count=1000, status=status)
    env = {k: v for k, v in os.environ.items() if k != "SHAMAN_SERVER_URL"}
    env["TMPDIR"] = str(tmp_path / "systmp")
    (tmp_path / "systmp").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "shaman_addon", "submit", str(blend_copy), "--server",
         shaman_server.url, "--cache-dir", str(tmp_path / "cache")],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "<html" not in proc.stderr.lower()
    # the error line (after a failed upload one more line says the uploads are kept)
    last = next(ln for ln in reversed(proc.stderr.splitlines()) if ln.startswith("error: "))
    assert str(status) in last and shaman_server.url in last
    assert pack_leftovers(tmp_path / "systmp") == []
    fault_row(f"command line: HTML {status} proxy page on every {endpoint}", saw=last,
              end_state=f"exit code {proc.returncode}, no traceback on stderr; no temp copies; "
              + end_state(shaman_server.storage, tmp_path / "cache"))


@pytest.mark.local_server_only
def test_an_upload_error_names_the_artists_file_not_a_temporary_copy(
    shaman_server: Any, blend_copy: Path, tmp_path: Path, private_tmp: Path, opts: Options,
    fault_row: Callable[..., Any],
) -> None:
    # The main .blend of this production is sent as a rewritten temporary copy, and it is
    # the first upload; every upload gets a proxy's 413 page.
    shaman_server.faults.html_next("upload", count=1000, status=413)
    err = error_of(lambda: Submission(blend_copy, opts(shaman_server.url, tmp_path,
                                                       jobs=1)).run())
    assert isinstance(err, ShamanError), repr(err)
    text = str(err)
    assert "shaman-pack-" not in text and str(private_tmp) not in text, text
    assert str(blend_copy) in text
    assert pack_leftovers(private_tmp) == []
    fault_row("an upload of a rewritten .blend fails (413 proxy page)", saw=text,
              end_state="the error names the artist's file, not the temporary copy (which is "
              "gone); " + end_state(shaman_server.storage, tmp_path / "cache"))


class _OnEvent:
    """A progress queue that runs ``action`` once, on the thread that emitted it, for the
    first event ``when`` accepts (with a clock that lets every event through)."""

    def __init__(self, when: Callable[[Any], bool], action: Callable[[], None]) -> None:
        self.when, self.action = when, action
        self.fired = False

    def put(self, event: Any) -> None:
        if not self.fired and self.when(event):
            self.fired = True
            self.action()


@pytest.mark.local_server_only
def test_dependency_changes_while_being_uploaded(
    shaman_server: Any, blend_templates: Templates, tmp_path: Path, opts: Options,
    fault_row: Callable[..., Any],
) -> None:
    files = Project(blend_templates, tmp_path, [4 << 20, 1000], seed="midbody")
    target = files.files[0]
    ticks = iter(range(1, 10**9))

    def flip_the_tail() -> None:  # same size, same mtime: only the server can tell
        data = bytearray(target.read_bytes())
        data[-1000:] = bytes(b ^ 0xFF for b in data[-1000:])
        _rewrite_keep_stat(target, bytes(data))

    hook = _OnEvent(lambda e: e.phase is Phase.UPLOADING and e.current_file == "tex/t000.png"
                    and e.upload_bytes_done > 0, flip_the_tail)
    client = {"backoff_s": 0.01, "chunk_size": 256 << 10}
    result = Submission(files.blend, opts(shaman_server.url, tmp_path, jobs=1, client=client),
                        events=hook, clock=lambda: float(next(ticks))).run()
    assert hook.fired
    st = shaman_server.counters.statuses
    assert st.get(("upload", 417)) == 1
    n = check_checkout(shaman_server.storage, result.checkout_path, files.expected())
    fault_row("dependency rewritten (same size and mtime) in the middle of its upload",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"417 once, re-hashed, sent again; the checkout's {n} files hold the "
              "final bytes; " + end_state(shaman_server.storage, tmp_path / "cache"))


def test_dependency_grows_while_being_uploaded(
    shaman_server: Any, blend_templates: Templates, tmp_path: Path, opts: Options,
    fault_row: Callable[..., Any],
) -> None:
    """Appending leaves the first ``size`` bytes intact, so the server accepts the old
    content; the run must still notice and send what the file holds now."""
    files = Project(blend_templates, tmp_path, [4 << 20, 1000], seed="grows")
    target = files.files[0]
    ticks = iter(range(1, 10**9))

    def append() -> None:
        with target.open("ab") as f:
            f.write(b"appended while uploading")

    hook = _OnEvent(lambda e: e.phase is Phase.UPLOADING and e.current_file == "tex/t000.png"
                    and e.upload_bytes_done > 0, append)
    client = {"backoff_s": 0.01, "chunk_size": 256 << 10}
    result = Submission(files.blend, opts(shaman_server.url, tmp_path, jobs=1, client=client),
                        events=hook, clock=lambda: float(next(ticks))).run()
    assert hook.fired
    n = check_checkout(shaman_server.storage, result.checkout_path, files.expected())
    fault_row("dependency appended to in the middle of its upload",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"the checkout's {n} files hold the FINAL bytes (the grown file); "
              + end_state(shaman_server.storage, tmp_path / "cache"))


def test_server_that_never_completes_the_connection(
    lib_files: Project, opts: Options, tmp_path: Path, private_tmp: Path,
    fault_row: Callable[..., Any]
) -> None:
    """A listener whose queue is full: the kernel drops further SYNs, so connecting hangs
    until the connect timeout (a host that is down behind a firewall looks like this)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        for _ in range(4):  # fill the accept queue; later connects get no answer at all
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(listener.getsockname())
            fillers.append(s)
        client = {"backoff_s": 0.01, "max_attempts": 2, "connect_timeout": 0.3}
        err = error_of(lambda: Submission(lib_files.blend,
                                          opts(url, tmp_path, client=client)).run())
    finally:
        for s in fillers:
            s.close()
        listener.close()
    assert isinstance(err, ServerTimeout), repr(err)
    assert url in str(err) and "connect timeout" in str(err)
    assert pack_leftovers(private_tmp) == []
    rows, checked = cache_state(tmp_path / "cache")
    fault_row("server down behind a firewall: connections never complete (connect timeout "
              "0.3 s, 2 tries)", saw=str(err),
              end_state=f"the URL and the connect timeout setting named; temp copy removed; "
              f"cache {rows} rows ({checked} verified)")
