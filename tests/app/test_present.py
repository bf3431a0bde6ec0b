"""Results, failures and server checks in words (present): one wording for every interface."""

from __future__ import annotations

from shaman_addon.app import present
from shaman_addon.app.runner import Outcome
from shaman_addon.collect.plan import MissingFile
from shaman_addon.errors import (
    Cancelled,
    ConfigError,
    MissingDependencies,
    ServerError,
    ServerUnreachable,
)
from shaman_addon.shaman.client import ServerCheck
from shaman_addon.submit import SubmitResult


def _result(**kw: object) -> SubmitResult:
    base: dict[str, object] = dict(
        checkout_path="main-2026-11-26-101500",
        blend_checkout_path="shots/main.blend",
        worker_blend_path="{jobs}/main-2026-11-26-101500/shots/main.blend",
        files_total=5, bytes_total=3_000_000, files_uploaded=2, bytes_uploaded=1_000_000,
        files_already_stored=3, bytes_already_stored=2_000_000,
        missing=[MissingFile("textures/gone.png", ("shots/main.blend",))],
        warnings=["something odd"], phase_seconds={}, dry_run=False,
    )
    base.update(kw)
    return SubmitResult(**base)  # type: ignore[arg-type]


def test_result_fields_and_lines_name_paths_counts_and_missing_files() -> None:
    f = present.ResultView.of(_result())
    assert f.checkout_path == "main-2026-11-26-101500"
    assert f.worker_path == "{jobs}/main-2026-11-26-101500/shots/main.blend"
    assert f.uploaded_text == "2 files, 1.0 MB"
    assert f.stored_text == "3 files, 2.0 MB"
    assert f.missing == [present.MissingRow("textures/gone.png", "shots/main.blend")]
    lines = present.result_lines(_result())
    assert lines[0] == "Checkout: main-2026-11-26-101500"
    assert "  textures/gone.png (used by shots/main.blend)" in present.missing_lines(
        _result().missing
    )
    dry = present.result_lines(_result(dry_run=True, checkout_path=None, worker_blend_path=None))
    assert dry[0].startswith("Dry run: 5 files, 3.0 MB; the server already has 3 files")


def test_error_text_keeps_our_sentences_and_names_anything_else() -> None:
    assert present.error_text(ServerUnreachable("No answer from http://x", url="http://x")) == (
        "No answer from http://x"
    )
    assert present.error_text(Cancelled("Cancelled.")) == "Cancelled."
    assert present.error_text(KeyError("k")) == "Unexpected error (KeyError): 'k'"


def test_the_whole_result_in_lines() -> None:
    assert present.result_lines(_result()) == [
        "Checkout: main-2026-11-26-101500",
        "Workers open: {jobs}/main-2026-11-26-101500/shots/main.blend",
        "In the checkout: 5 files, 3.0 MB; uploaded 2 files, 1.0 MB; already on the server "
        "3 files, 2.0 MB.",
        "Warning: something odd",
    ]
    dry = _result(dry_run=True, checkout_path=None, worker_blend_path=None, warnings=[],
                  to_upload=["shots/main.blend", "textures/wall.png"])
    assert present.result_lines(dry) == [
        "Dry run: 5 files, 3.0 MB; the server already has 3 files, 2.0 MB. "
        "Would upload 2 files, 1.0 MB.",
        "  would upload: shots/main.blend",
        "  would upload: textures/wall.png",
        "Nothing was created (dry run).",
    ]


def test_the_operators_report_is_the_first_line() -> None:
    assert present.report_line(_result()) == (
        "Submitted to Shaman. Checkout: main-2026-11-26-101500"
    )
    dry = _result(dry_run=True, checkout_path=None, worker_blend_path=None)
    assert present.report_line(dry) == present.result_lines(dry)[0]


def test_missing_files_one_line_each_with_what_uses_them() -> None:
    missing = [
        MissingFile("textures/gone.png", ("shots/main.blend", "lib/props.blend")),
        MissingFile("//sounds/x.wav", ()),
    ]
    assert present.missing_lines(missing) == [
        "MISSING (2): used but not on disk:",
        "  textures/gone.png (used by shots/main.blend, lib/props.blend)",
        "  //sounds/x.wav (used by ?)",
    ]
    assert present.missing_lines([]) == []


def test_error_lines_and_the_json_of_an_outcome() -> None:
    assert present.error_line(ConfigError("No server.")) == "error: No server."
    assert present.error_line(Cancelled("Stopped.")) == "cancelled: Stopped."
    assert present.error_line(KeyboardInterrupt()) == "cancelled"
    failed = Outcome(error=MissingDependencies("2 files are missing."))
    assert present.outcome_json(failed) == {
        "error": "2 files are missing.", "error_type": "MissingDependencies", "exit_code": 3,
        "missing": [],
    }
    server = ServerError("The server said no.", url="http://x", status=500)
    assert present.outcome_json(Outcome(error=server))["exit_code"] == 1
    assert present.outcome_json(Outcome(result=_result())) == {
        **_result().to_json(), "files_same_content": 0}


def test_a_server_check_in_words_and_json() -> None:
    good = ServerCheck(True, True, True, True, "Flamenco Manager 3.6 with Shaman enabled.")
    assert present.check_lines(good) == ["Flamenco Manager 3.6 with Shaman enabled."]
    off = ServerCheck(False, True, True, False, "Shaman is not enabled on this Manager.")
    assert present.check_lines(off) == [
        "Shaman is not enabled on this Manager.",
        "  reachable: yes; a Flamenco Manager: yes; Shaman enabled: no",
    ]
    assert present.check_json("http://farm:8080", off) == {
        "server": "http://farm:8080", "ok": False, "reachable": True, "is_manager": True,
        "shaman_enabled": False, "message": "Shaman is not enabled on this Manager.",
    }
