"""Hostile or broken servers (issue 13, items 6 and 7): the real local server on loopback
answers some endpoint the way a broken or hostile one would (``HostileAnswer``: a body of
its choice, gigabytes made as they are sent, each byte dripped). Every call must end in
bounded time, read a bounded answer, and quote what the server said as capped, escaped
data. Deadlines are made small through the client settings; a test never sleeps to decide
anything, and ``Background.join`` is only a guard against a hang.
"""

from __future__ import annotations

import json
import logging
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shaman_addon.errors import (
    CheckoutAnswerLost,
    FilesNeverStored,
    NotAShamanServer,
    ServerError,
    ServerTimeout,
    UnsafeServerAnswer,
    UploadKeepsDropping,
    UploadNeverSettles,
)
from shaman_addon.shaman.client import ShamanClient
from shaman_addon.submit import Submission, Tuning

from blend_templates import Project
from fault_helpers import Background, Options, disk_state, error_of
from shaman_server import HostileAnswer

pytestmark = pytest.mark.local_server_only

# Small deadlines: connect + read timeouts of 0.6 s, bytes at 100 MB/s (so a deadline is
# about 0.6 s), one attempt per call.
QUICK: dict[str, Any] = {"connect_timeout": 0.3, "read_timeout": 0.3, "min_rate": 100 << 20,
                         "max_attempts": 1, "backoff_s": 0.01, "lane_read_timeout": 0.3}
DRIP_S = 0.05  # between two bytes of a dripped answer: 10,000 bytes take 500 s


def _run(sub: Submission) -> BaseException:
    """The submission's failure; the join is only a guard against a hang."""
    bg = Background(sub)
    bg.join()
    assert bg.error is not None, f"expected a failure, got {bg.result!r}"
    return bg.error


def _plain(text: str) -> bool:
    """One printable line: no escape, no newline, no other control character."""
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


# -- item 6: bounded everything -----------------------------------------------------------


def test_208_forever_while_unknown_is_bounded(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any],
) -> None:
    shaman_server.faults.hostile("upload", HostileAnswer(208, content_type="text/plain"))
    tuning = Tuning(max_unsettled_per_file=3, max_unsettled=50)
    error = _run(Submission(files.blend, opts(shaman_server.url, tmp_path, tuning=tuning)))
    assert isinstance(error, UploadNeverSettles), error
    assert shaman_server.url in str(error) and "208" in str(error)
    uploads = shaman_server.counters.requests.get("upload", 0)
    # Each file at most 4 times (the 4th 208 ends it), and the whole run is bounded.
    assert uploads <= 4 * len(files.content_keys()) + 8
    assert disk_state(shaman_server.storage).checkouts == []
    fault_row("server answers 208 to every upload while the status says unknown",
              saw=str(error), end_state=f"ended after {uploads} uploads (unbounded before); "
              "no checkout made", area="fault", measured={"uploads": uploads})


@pytest.mark.parametrize("endpoint", ["requirements", "create"])
def test_dripping_server_meets_the_overall_deadline(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any], endpoint: str,
) -> None:
    shaman_server.faults.hostile(endpoint, HostileAnswer(200, b"{" + b" " * 10_000 + b"}",
                                                         drip_s=DRIP_S))
    error = _run(Submission(files.blend, opts(shaman_server.url, tmp_path, client=QUICK)))
    # A checkout request that got no answer is never sent again (it could make two).
    assert isinstance(error, CheckoutAnswerLost if endpoint == "create" else ServerTimeout)
    assert "overall deadline" in str(error) and shaman_server.url in str(error)
    assert disk_state(shaman_server.storage).checkouts == []
    fault_row(f"server drips its {endpoint} answer, one byte every {DRIP_S} s",
              saw=str(error), end_state="the call ended at its overall deadline (held for "
              "ever before); no checkout made", area="fault")


def test_dripped_upload_answers_end_the_submission(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any],
) -> None:
    shaman_server.faults.hostile("upload", HostileAnswer(200, b" " * 10_000, drip_s=DRIP_S))
    tuning = Tuning(max_resets_per_file=1)
    error = _run(Submission(files.blend, opts(shaman_server.url, tmp_path, client=QUICK,
                                              tuning=tuning, jobs=2)))
    assert isinstance(error, UploadKeepsDropping), error
    fault_row("server drips every upload's answer (pipelined lane and requests)",
              saw=str(error), end_state="each upload ended at its deadline, the file's "
              "status asked, the bound on cut-off uploads ended the submission",
              area="fault")


def test_configuration_nested_deeply_is_refused_cleanly(
    shaman_server: Any, fault_row: Callable[..., Any],
) -> None:
    shaman_server.faults.hostile("configuration", HostileAnswer(200, b"[" * 200_000))
    with ShamanClient(shaman_server.url, Options({}).client(**QUICK)) as client:
        error = error_of(client.configuration)
        check = client.check()
    assert isinstance(error, NotAShamanServer), repr(error)
    assert "nested deeper" in str(error) and not check.ok
    fault_row("server answers configuration with JSON nested 200,000 deep", saw=str(error),
              end_state="a sentence naming the server, in Check server too (RecursionError "
              "traceback before)", area="fault")


def test_check_server_keeps_its_budget_against_a_dripping_server(
    shaman_server: Any, fault_row: Callable[..., Any],
) -> None:
    shaman_server.faults.hostile("configuration", HostileAnswer(
        200, b'{"shamanEnabled": true' + b" " * 10_000 + b"}", drip_s=DRIP_S))
    settings = Options({}).client(**{**QUICK, "read_timeout": 0.5})
    with ShamanClient(shaman_server.url, settings) as client:
        check = client.check()
    assert not check.ok and "overall deadline" in check.message
    fault_row("Check server against a server that drips its answer",
              saw=check.message, end_state="answered within the request timeout (never "
              "before)", area="fault")


def test_gigabyte_answer_is_not_read_whole(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any],
) -> None:
    shaman_server.faults.hostile("requirements", HostileAnswer(200, size=1 << 30, fill=b" "))
    tracemalloc.start()
    try:
        error = _run(Submission(files.blend, opts(shaman_server.url, tmp_path)))
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, NotAShamanServer), error
    assert "more than" in str(error) and shaman_server.url in str(error)
    assert peak < 64 << 20, f"peak {peak / 2**20:.0f} MiB of Python allocations"
    fault_row("server answers requirements with a 1 GiB body", saw=str(error),
              end_state=f"read at most the cap; peak Python memory {peak / 2**20:.1f} MiB "
              "(3 GB before)", area="fault", measured={"peak_MiB": round(peak / 2**20, 1)})


@pytest.mark.parametrize(("endpoint", "status", "body"), [
    ("requirements", 200, b'{"files": ' + b"[" * 200_000),
    ("requirements", 500, b'{"message": ' + b"[" * 200_000),
])
def test_deeply_nested_json_is_refused_cleanly(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any], endpoint: str, status: int, body: bytes,
) -> None:
    shaman_server.faults.hostile(endpoint, HostileAnswer(status, body))
    error = _run(Submission(files.blend, opts(shaman_server.url, tmp_path)))
    assert isinstance(error, (NotAShamanServer, ServerError)), repr(error)
    assert shaman_server.url in str(error) and len(str(error)) < 2000
    fault_row(f"server answers {endpoint} ({status}) with JSON nested 200,000 deep",
              saw=str(error), end_state="a sentence naming the server (RecursionError "
              "traceback before)", area="fault")


# -- item 7: server strings are data ------------------------------------------------------


@pytest.mark.parametrize("answered", [
    "../../etc/cron.d", "/etc/cron.d", "jobs/\x1b[2J\x1b]0;owned\x07", "a" * 500_000,
])
def test_unsafe_checkout_path_from_the_server_is_refused(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any], answered: str,
) -> None:
    shaman_server.faults.hostile("create", HostileAnswer(
        200, json.dumps({"checkoutPath": answered}).encode()))
    error = _run(Submission(files.blend, opts(shaman_server.url, tmp_path)))
    assert isinstance(error, UnsafeServerAnswer), error
    text = str(error)
    assert _plain(text) and len(text) < 1500 and shaman_server.url in text
    history = tmp_path / "cache" / "history.jsonl"
    entries = [json.loads(line) for line in history.read_text("utf-8").splitlines()]
    assert entries and all(e["status"] == "failed" for e in entries)
    assert all(e.get("checkout_path") != answered for e in entries)
    assert all(_plain(json.dumps(e, ensure_ascii=False)) for e in entries)
    assert all(len(json.dumps(e)) < 5000 for e in entries)
    fault_row(f"server answers checkout/create with checkoutPath {answered[:24]!r}"
              f"{'...' if len(answered) > 24 else ''}",
              saw=text[:300], end_state="refused, quoted capped and escaped; not recorded "
              "as done", area="security")


def test_requirements_about_files_never_asked_are_ignored(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any], caplog: pytest.LogCaptureFixture,
) -> None:
    evil = "\x1b]0;owned\x07\n" + "x" * 1_000_000
    body = json.dumps({"files": [{"sha": "0" * 64, "size": 5, "path": evil,
                                  "status": "unknown"}]}).encode()
    shaman_server.faults.hostile("requirements", HostileAnswer(200, body, count=1))
    with caplog.at_level(logging.WARNING):
        result = Submission(files.blend, opts(shaman_server.url, tmp_path)).run()
    assert result.checkout_path
    said = [r.getMessage() for r in caplog.records if "not asked about" in r.getMessage()]
    assert said, "the unasked entry was not reported"
    assert all(_plain(m) and len(m) < 1000 for m in said)
    assert all(len(r.getMessage()) < 5000 for r in caplog.records)
    fault_row("requirements answer names a path never asked about (escapes, 1 MB)",
              saw=said[0][:300], end_state=f"ignored, quoted capped and escaped; checkout "
              f"{result.checkout_path} made", area="security")


def test_server_error_message_is_capped_and_escaped(
    shaman_server: Any, files: Project, opts: Options, tmp_path: Path,
    fault_row: Callable[..., Any],
) -> None:
    shaman_server.faults.fail_next("requirements", count=8, status=500,
                                   message="\x1b[2J\x1b[31mpwned\r\n" + "A" * 2_000_000)
    error = error_of(lambda: Submission(files.blend, opts(shaman_server.url, tmp_path)).run())
    assert isinstance(error, (ServerError, FilesNeverStored, NotAShamanServer)), repr(error)
    text = str(error)
    assert _plain(text) and len(text) < 2000 and "pwned" in text
    fault_row("server error message with terminal escapes and 2 MB of text",
              saw=text[:300], end_state="quoted capped (500 characters) and escaped",
              area="security")
