"""What the Blender panel shows, computed on plain Python (ui_state)."""

from __future__ import annotations

import queue
from datetime import datetime
from pathlib import Path

import pytest

from shaman_addon.app import ui_state
from shaman_addon.collect.plan import MissingFile
from shaman_addon.errors import Cancelled, ServerUnreachable
from shaman_addon.progress import Phase, ProgressEvent
from shaman_addon.submit import SubmitResult


def _event(i: int, n: int) -> ProgressEvent:
    total = 5_000_000_000  # more than a 32-bit int: must reach the UI intact
    return ProgressEvent(
        phase=Phase.HASHING if i < n // 2 else Phase.UPLOADING,
        files_done=i,
        files_total=n,
        hash_bytes_done=min(total, i * 600_000),
        hash_bytes_total=total,
        upload_bytes_done=i * 500_000,
        upload_bytes_total=total,
        current_file=f"textures/t_{i:05d}.png",
        speed_bps=1e6 + i,
        eta_s=float(n - i),
        message=f"event {i}",
    )


class _CountingView(ui_state.ProgressView):
    applied = 0

    def __setattr__(self, name: str, value: object) -> None:
        if name == "phase":
            type(self).applied += 1
        super().__setattr__(name, value)


def test_drain_of_10000_events_lands_on_the_last_and_keeps_every_tick_in_budget() -> None:
    n = 10_000
    events = [_event(i, n) for i in range(n)]
    q: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    for ev in events:
        q.put(ev)
    # The injected clock moves one unit per reading: the drain reads it once per event,
    # so a budget of 40 units lets a tick take about 40 events.
    now = [0]

    def clock() -> float:
        now[0] += 1
        return float(now[0])

    view = _CountingView()
    _CountingView.applied = 0
    reports = []
    while True:
        rep = ui_state.tick(q, view, budget_s=40, clock=clock)
        if rep.applied is None:
            break
        reports.append(rep)
    assert max(r.elapsed for r in reports) <= 40
    assert len(reports) >= n // 41  # the budget really split the work over many ticks
    assert _CountingView.applied == len(reports)  # one apply per tick: only the newest
    assert reports[-1].applied is events[-1]
    expected = ui_state.progress_fields(events[-1])
    assert {k: getattr(view, k) for k in expected} == expected
    assert expected["bytes_text"] == "5.0 GB / 5.0 GB"  # 4,999,500,000 of 5e9 bytes
    assert expected["files_done"] == n - 1 and expected["phase"] == "uploading"


def test_a_final_event_is_applied_at_once_and_an_empty_queue_costs_nothing() -> None:
    q: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    view = ui_state.ProgressView()
    assert ui_state.tick(q, view).applied is None
    assert view == ui_state.ProgressView()
    q.put(_event(1, 10))
    q.put(ProgressEvent(Phase.CANCELLED, message="The submission was cancelled."))
    q.put(_event(2, 10))  # stale: nothing after a final event matters
    rep = ui_state.tick(q, view)
    assert view.phase == "cancelled"
    assert view.status_line == "Cancelled: The submission was cancelled."
    assert rep.applied is not None and rep.applied.phase is Phase.CANCELLED


def test_progress_fields_say_phase_files_bytes_speed_and_eta() -> None:
    ev = ProgressEvent(
        phase=Phase.UPLOADING, files_done=3, files_total=12, upload_bytes_done=1_500_000,
        upload_bytes_total=12_000_000, current_file="textures/wall.png", speed_bps=2_500_000,
        eta_s=125.0,
    )
    f = ui_state.progress_fields(ev)
    assert f["bar_text"] == "Uploading · 3/12 files · 1.5 MB / 12.0 MB · 2.5 MB/s · ETA 2m 05s"
    assert 0 < f["fraction"] < 1
    assert f["current_file"] == "textures/wall.png"


def test_formatting() -> None:
    assert ui_state.format_bytes(0) == "0 B"
    assert ui_state.format_bytes(999) == "999 B"
    assert ui_state.format_bytes(1_234_567) == "1.2 MB"
    assert ui_state.format_bytes(3_200_000_000_000) == "3.2 TB"
    assert ui_state.format_duration(None) == ""
    assert ui_state.format_duration(42.4) == "42s"
    assert ui_state.format_duration(3725) == "1h 02m"
    assert ui_state.format_speed(0) == ""


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
    f = ui_state.result_fields(_result())
    assert f["checkout_path"] == "main-2026-11-26-101500"
    assert f["worker_path"] == "{jobs}/main-2026-11-26-101500/shots/main.blend"
    assert f["uploaded_text"] == "2 files, 1.0 MB"
    assert f["stored_text"] == "3 files, 2.0 MB"
    assert f["missing"] == [ui_state.MissingRow("textures/gone.png", "shots/main.blend")]
    lines = ui_state.result_lines(_result())
    assert lines[0] == "Checkout: main-2026-11-26-101500"
    assert "  textures/gone.png (used by shots/main.blend)" in lines
    dry = ui_state.result_lines(_result(dry_run=True, checkout_path=None, worker_blend_path=None))
    assert dry[0].startswith("Dry run: 5 files, 3.0 MB; the server already has 3 files")


def test_error_text_keeps_our_sentences_and_names_anything_else() -> None:
    assert ui_state.error_text(ServerUnreachable("No answer from http://x", url="http://x")) == (
        "No answer from http://x"
    )
    assert ui_state.error_text(Cancelled("Cancelled.")) == "Cancelled."
    assert ui_state.error_text(KeyError("k")) == "Unexpected error (KeyError): 'k'"


def test_checkout_preview_resolves_the_template_live() -> None:
    now = datetime(2026, 11, 26, 10, 15, 0)
    assert ui_state.checkout_preview(
        "{blend_name}-{date}-{time}", "/p/shots/sc 01:a.blend", now=now
    ) == "sc 01_a-2026-11-26-101500"
    assert ui_state.checkout_preview("{user}/{blend_name}", "/p/x.blend", now=now, user="ann") == (
        "ann/x"
    )
    assert ui_state.checkout_preview("{nope}", "/p/x.blend", now=now).startswith(
        "(invalid template:"
    )
    assert ui_state.checkout_preview("{blend_name}", "") == "(save the file first)"


ROOTS = ["/tmp", "/home", "/Users", "/home/ann"]


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("//render/frame_", "relative to the .blend file"),
        ("//", "relative to the .blend file"),
        ("", "is empty"),
        ("render/frame_", "is relative"),
        ("/tmp/", "exists only on this computer"),
        ("/home/ann/renders/shot_", "exists only on this computer"),
        ("C:\\Users\\ann\\renders\\", "exists only on this computer"),
        ("c:/renders/", "exists only on this computer"),
    ],
)
def test_render_output_warnings(path: str, needle: str) -> None:
    warnings = ui_state.render_output_warnings(path, local_roots=ROOTS)
    assert len(warnings) == 1 and needle in warnings[0], warnings
    assert "Output Properties > Output" in warnings[0]


@pytest.mark.parametrize(
    "path", ["/mnt/farm/renders/shot_", "/srv/projects/x/", "\\\\nas\\renders\\x_", "R:\\renders\\"]
)
def test_shared_render_outputs_are_fine(path: str) -> None:
    assert ui_state.render_output_warnings(path, local_roots=ROOTS) == []


def test_default_local_roots_include_home_and_temp(tmp_path: Path) -> None:
    roots = ui_state.default_local_roots(home="/home/bob")
    assert "/home/bob" in roots and "/tmp" in roots
    assert ui_state.render_output_warnings("/home/bob/out/")  # the real defaults warn too


def test_unsaved_changes_decision() -> None:
    assert ui_state.wants_temp_copy("AUTO", is_dirty=True, background=False)
    assert not ui_state.wants_temp_copy("AUTO", is_dirty=False, background=False)
    # background Blender reports is_dirty=True for every file: the saved file is sent
    assert not ui_state.wants_temp_copy("AUTO", is_dirty=True, background=True)
    assert ui_state.wants_temp_copy("COPY", is_dirty=False, background=True)
    assert not ui_state.wants_temp_copy("DISK", is_dirty=True, background=False)
    with pytest.raises(ValueError, match="unknown unsaved-changes mode"):
        ui_state.wants_temp_copy("MAYBE", is_dirty=True, background=False)
