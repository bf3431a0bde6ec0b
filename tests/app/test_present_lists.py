"""Long lists in words (issue 14): the first ``LIST_SHOWN`` entries, the count of the
rest and where the whole list is; the JSON keeps every entry."""

from __future__ import annotations

from pathlib import Path

from shaman_addon.app import present
from shaman_addon.app.present import LIST_SHOWN, FullLists
from shaman_addon.collect.plan import MissingFile, OutsideFile
from shaman_addon.errors import ConfigError, MissingDependencies
from shaman_addon.submit import SubmitOptions, SubmitResult

FILES, MISSING, OUTSIDE, WARNINGS = 100_000, 10_000, 10_000, 1_000
HISTORY = Path("/cache/shaman/history.jsonl")


def _result(*, dry_run: bool) -> SubmitResult:
    return SubmitResult(
        checkout_path=None if dry_run else "shot-1", blend_checkout_path="shot.blend",
        worker_blend_path=None if dry_run else "{jobs}/shot-1/shot.blend",
        files_total=FILES, bytes_total=FILES * 1000, files_uploaded=FILES,
        bytes_uploaded=FILES * 1000, files_already_stored=0, bytes_already_stored=0,
        missing=[MissingFile(f"//tex/gone_{i:05d}.png", (f"lib_{i % 7}.blend",))
                 for i in range(MISSING)],
        warnings=[f"warning {i}" for i in range(WARNINGS)], phase_seconds={},
        dry_run=dry_run, to_upload=[f"tex/t_{i:06d}.png" for i in range(FILES)],
        outside_project=[OutsideFile(f"/mnt/o_{i}.exr", f"/mnt/o_{i}.exr", ("shot.blend",))
                         for i in range(OUTSIDE)])


def test_the_view_keeps_the_first_entries_the_counts_and_where_the_rest_is() -> None:
    view = present.ResultView.of(_result(dry_run=False), FullLists(HISTORY))
    assert [row.path for row in view.missing] == [
        f"//tex/gone_{i:05d}.png" for i in range(LIST_SHOWN)]
    assert view.missing[3].referenced_by == "lib_3.blend"
    assert view.missing_total == MISSING
    assert view.more_missing == (
        "... and 9,980 more: the full list is in the history file /cache/shaman/history.jsonl")
    assert view.warnings[1:] == [f"warning {i}" for i in range(LIST_SHOWN - 1)]
    # 1,000 warnings and the one naming the 10,000 files from outside the project
    assert view.more_warnings.startswith("... and 981 more: the full list is in the history")


def test_a_short_list_is_whole_and_has_no_count_line() -> None:
    result = _result(dry_run=False)
    result.missing, result.warnings, result.outside_project = result.missing[:3], [], []
    view = present.ResultView.of(result, FullLists(HISTORY, json_flag=True))
    assert len(view.missing) == 3 and view.missing_total == 3
    assert view.more_missing == view.more_warnings == ""
    assert present.missing_lines(result.missing)[-1].startswith("  //tex/gone_00002.png")


def test_the_command_lines_words_name_twenty_and_json_keeps_all() -> None:
    full = FullLists.of(SubmitOptions(server_url="http://x", cache_dir=Path("/cache/shaman")),
                        json_flag=True)
    assert full == FullLists(HISTORY, json_flag=True)
    result = _result(dry_run=True)
    lines = present.missing_lines(result.missing, full)
    assert lines[0] == "MISSING (10,000): used but not on disk:"
    assert lines[1:-1] == [f"  //tex/gone_{i:05d}.png (used by lib_{i % 7}.blend)"
                           for i in range(LIST_SHOWN)]
    assert lines[-1] == ("  ... and 9,980 more: the full list is in the history file "
                         "/cache/shaman/history.jsonl and the output of --json")
    words = present.result_lines(result, full)
    uploads = [line for line in words if line.startswith("  would upload: ")]
    assert uploads == [f"  would upload: tex/t_{i:06d}.png" for i in range(LIST_SHOWN)]
    # the history leaves out the files to upload: only --json lists them all
    assert "  ... and 99,980 more: the full list is in the output of --json" in words
    assert len(words) < 3 * LIST_SHOWN
    doc = present.result_json(result)
    assert len(doc["missing"]) == MISSING and len(doc["to_upload"]) == FILES
    assert len(doc["warnings"]) == WARNINGS and len(doc["outside_project"]) == OUTSIDE
    assert present.report_line(result) == words[0]


def test_without_a_history_or_json_the_words_name_the_command_that_lists_them() -> None:
    assert FullLists().words() == (
        "the command line's JSON (python -m shaman_addon submit FILE.blend --dry-run --json)")
    assert FullLists(HISTORY).words(in_history=False) == FullLists().words()


def test_refused_files_are_cut_short_the_same_way() -> None:
    refused = [OutsideFile(f"/home/a/.ssh/k{i}", f"/home/a/.ssh/k{i}", ("shot.blend",),
                           credential_store="~/.ssh") for i in range(50)]
    lines = present.refused_lines(refused, FullLists(json_flag=True))
    assert lines[0].startswith("REFUSED (50): in credential stores, never sent")
    assert len(lines) == 1 + LIST_SHOWN + 1
    assert lines[-1] == "  ... and 30 more: the full list is in the output of --json"


def test_a_refusal_over_missing_files_says_where_every_one_is_listed() -> None:
    err = MissingDependencies("3 dependencies of shot.blend are missing (a; b; c).",
                              missing=(("a", ()), ("b", ()), ("c", ())))
    assert present.failure_text(err, FullLists(HISTORY)) == (
        "3 dependencies of shot.blend are missing (a; b; c). Every missing file is listed "
        "in the history file /cache/shaman/history.jsonl.")
    assert present.error_line(err, FullLists(HISTORY, json_flag=True)).endswith(
        "history.jsonl and the output of --json.")
    other = ConfigError("No server.")
    assert present.failure_text(other, FullLists(HISTORY)) == "No server."


def test_the_outside_files_warning_names_ten_and_says_where_the_rest_are() -> None:
    view = present.ResultView.of(_result(dry_run=False), FullLists(HISTORY))
    warning = view.warnings[0]  # first: 1,000 other warnings do not push it out
    assert warning.startswith("10,000 files from outside the project folder were sent: "
                              "/mnt/o_0.exr (used by shot.blend); /mnt/o_1.exr")
    assert warning.endswith("; and 9,990 more (all listed in the history file "
                            "/cache/shaman/history.jsonl)")
