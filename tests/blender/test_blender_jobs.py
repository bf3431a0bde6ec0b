"""The Render job section in real Blender (``bpy``), against the local Manager's job API.

One bpy process walks the whole section (``job_scenario.py panel``): no job types yet,
Refresh, a job type with every kind of setting (each type, subtype, visibility, bounds,
choices, read-only, locks) drawn through a recording layout, the choice remembered per
file outside the artist's file, a job type edited on the Manager (new etag: its
properties generated again), and a job submitted from the panel with its result drawn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from blender_scripts.runner import run_bpy

from shaman_server import ShamanServer

CUSTOM = "all-kinds"
SIMPLE = "simple-blender-render"

ALL_KINDS: dict[str, Any] = {
    "name": CUSTOM, "label": "All kinds", "etag": "etag-1",
    "description": "A job type with every kind of setting",
    "settings": [
        {"key": "frames", "type": "string", "required": True,
         "eval": "f'{C.scene.frame_start}-{C.scene.frame_end}'",
         "evalInfo": {"showLinkButton": True, "description": "Scene frame range"}},
        {"key": "output_dir", "type": "string", "subtype": "dir_path",
         "visible": "submission", "default": "/farm/out"},
        {"key": "script", "type": "string", "subtype": "file_path", "label": "Script file"},
        {"key": "file_stem", "type": "string", "subtype": "file_name", "default": "frame"},
        {"key": "chunk", "type": "int32", "propargs": {"min": 1, "max": 64}, "default": 4},
        {"key": "scale", "type": "float", "propargs": {"min": 0.5, "max": 2}, "default": 1.5},
        {"key": "denoise", "type": "bool", "default": True, "visible": "submission"},
        {"key": "quality", "type": "string", "choices": ["low", "medium", "high"],
         "default": "medium"},
        {"key": "fixed_note", "type": "string", "editable": False, "default": "as set"},
        {"key": "output_path", "type": "string", "editable": False,
         "eval": "str(Path(settings.output_dir, jobname))"},
        {"key": "scene", "type": "string", "eval": "C.scene.name", "visible": "web"},
        {"key": "fps", "type": "float", "eval": "C.scene.render.fps", "visible": "hidden"},
        {"key": "percent", "type": "int32", "propargs": {"min": 1, "max": 100},
         "eval": "C.scene.render.resolution_percentage",
         "evalInfo": {"showLinkButton": True}},
    ],
}


def entries(drawn: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in drawn if e["kind"] == kind]


def prop(drawn: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [e for e in entries(drawn, "prop") if e["prop"] == name]
    assert len(found) == 1, (name, drawn)
    return found[0]


def label(drawn: list[dict[str, Any]], start: str) -> dict[str, Any]:
    found = [e for e in entries(drawn, "label") if (e["text"] or "").startswith(start)]
    assert len(found) == 1, (start, [e["text"] for e in entries(drawn, "label")])
    return found[0]


def setting_props(drawn: list[dict[str, Any]]) -> set[str]:
    return {e["prop"] for e in entries(drawn, "prop") if e["prop"].startswith(("v_", "lock_"))}


@pytest.fixture(scope="module")
def jobs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShamanServer]:
    """The local Manager with the job API, for this module's one bpy run."""
    server = ShamanServer(tmp_path_factory.mktemp("jobs-server"), style="manager").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def panel_run(
    tiny_production: dict[str, Any], jobs_server: ShamanServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Any], ShamanServer, dict[str, Any]]:
    server = jobs_server
    server.jobs.add_job_type(ALL_KINDS)
    server.jobs.add_worker_tag("gpu", "the GPU nodes")
    values = {"frames": "3-7", "output_dir": "//renders", "script": "/farm/s.py",
              "chunk": 9, "scale": 0.75, "denoise": False, "quality": "high",
              "percent": 50}
    args = {"url": server.url, "custom": CUSTOM, "simple": SIMPLE, "values": values,
            "tag": "gpu", "blend": tiny_production["main"],
            "other_blend": str(Path(tiny_production["project"]) / "shots" / "other.blend"),
            "render_output_root": "/farm/renders"}
    user = tmp_path_factory.mktemp("jobs-user")
    run = run_bpy("job_scenario.py", "panel", json.dumps(args), user_dir=user)
    assert run.returncode == 0 and run.result is not None, run.explain()
    return run.result, server, args


Run = tuple[dict[str, Any], ShamanServer, dict[str, Any]]


def test_before_refresh_the_menu_offers_refresh_and_checkout_only(panel_run: Run) -> None:
    res, _server, _args = panel_run
    drawn = res["before_refresh"]
    assert prop(drawn, "job_type")["text"] == "Render job"
    assert label(drawn, "Refresh to read the Manager's job types.")["icon"] == "INFO"
    assert any(e.get("op") == "shaman.refresh_job_types" for e in drawn)
    assert res["refresh"]["ret"] == ["FINISHED"], res["refresh"]
    assert res["menu"][0] == "__none__"
    assert sorted(res["menu"][1:]) == sorted(["echo-sleep-test", SIMPLE, CUSTOM])
    assert res["tags"] == ["__any__", "gpu"]
    none = res["none_drawn"]  # checkout only: no settings, nothing to refresh
    assert setting_props(none) == set() and not any(
        (e["text"] or "").startswith("Refresh to read") for e in entries(none, "label"))
    buttons = [e for e in none if e.get("op") == "shaman.submit"]
    assert [(e["text"], e["props"]) for e in buttons] == [
        ("Check Dependencies", {"dry_run": True, "use_panel_choice": True}),
        ("Submit to Shaman", {"use_panel_choice": True})]


def test_every_setting_type_and_visibility_is_drawn_as_the_job_type_says(
    panel_run: Run,
) -> None:
    res, _server, _args = panel_run
    drawn, rna = res["custom_drawn"], res["rna"]
    # hidden and web-only settings get no property and are not drawn
    assert set(res["names"]) == {"frames", "output_dir", "script", "file_stem", "chunk",
                                 "scale", "denoise", "quality", "fixed_note", "output_path",
                                 "percent"}
    for key in ("scene", "fps"):
        assert f"v_{key}" not in rna
        assert not any(key in (e["text"] or "") for e in entries(drawn, "label"))
    assert rna["v_output_dir"]["type"] == "STRING" and rna["v_output_dir"]["subtype"] == (
        "DIR_PATH")
    assert rna["v_script"]["subtype"] == "FILE_PATH" and rna["v_script"]["name"] == (
        "Script file")
    assert rna["v_file_stem"]["subtype"] == "FILE_NAME"
    assert rna["v_chunk"] == {**rna["v_chunk"], "type": "INT", "min": 1, "max": 64,
                              "default": 4}
    assert rna["v_scale"]["type"] == "FLOAT" and rna["v_scale"]["min"] == 0.5
    assert rna["v_scale"]["max"] == 2.0 and rna["v_scale"]["default"] == 1.5
    assert rna["v_denoise"] == {**rna["v_denoise"], "type": "BOOLEAN", "default": True}
    assert rna["v_quality"]["items"] == ["low", "medium", "high"]
    assert rna["v_quality"]["default"] == "medium"
    for name in ("v_output_dir", "v_script", "v_file_stem", "v_chunk", "v_scale",
                 "v_denoise", "v_quality"):
        assert prop(drawn, name)["enabled"], name
    assert not prop(drawn, "v_fixed_note")["enabled"]  # read-only: greyed
    output = label(drawn, "Output path: ")
    assert output["text"] == "Output path: /farm/out/main" and not output["enabled"]
    # locks closed: the automatic value, greyed, beside a closed lock
    frames = label(drawn, "Frames: ")
    assert frames["text"] == "Frames: 1-250" and not frames["enabled"]
    assert prop(drawn, "lock_frames")["icon"] == "LOCKED"
    assert label(drawn, "Percent: ")["text"] == "Percent: 100"
    assert rna["lock_frames"]["default"] is True and "lock_output_path" not in rna
    for name in ("job_name", "priority", "worker_tag", "paused"):
        assert prop(drawn, name)["enabled"]
    assert res["requests_while_drawing"] == 0  # drawing reads the cache, never the Manager


def test_an_open_lock_takes_the_artists_value(panel_run: Run) -> None:
    res, _server, args = panel_run
    drawn = res["unlocked_drawn"]
    assert prop(drawn, "v_frames")["enabled"] and prop(drawn, "lock_frames")["icon"] == (
        "UNLOCKED")
    assert not any((e["text"] or "").startswith("Frames: ") for e in entries(drawn, "label"))
    choice = res["choice"]
    blend_dir = Path(args["blend"]).parent
    assert choice["job_type"] == CUSTOM and choice["priority"] == 77
    assert choice["worker_tag"] == "gpu" and not choice["paused"]
    assert choice["given"] == {
        "frames": "3-7", "output_dir": str(blend_dir / "renders"), "script": "/farm/s.py",
        "file_stem": "frame", "chunk": 9, "scale": 0.75, "denoise": False,
        "quality": "high", "percent": 50,
    }


def test_the_choice_is_remembered_per_file_without_touching_it(panel_run: Run) -> None:
    res, _server, args = panel_run
    record = res["memory_after_edit"][args["blend"]]
    assert record["job_type"] == CUSTOM and record["priority"] == 77
    assert record["job_types"][CUSTOM]["values"]["frames"] == "3-7"
    assert record["job_types"][CUSTOM]["locks"] == {"frames": False, "percent": False}
    assert res["other_choice"]["job_type"] == "" and res["other_choice"]["priority"] == 50
    assert res["restored_choice"] == res["choice"]
    assert res["artist_file_unchanged"]


def test_an_edited_job_type_is_generated_again_and_keeps_the_values(panel_run: Run) -> None:
    res, server, _args = panel_run
    assert res["refresh2"]["ret"] == ["FINISHED"]
    assert res["regenerated"] and res["etag_after"] == server.jobs.job_type(CUSTOM)["etag"]
    assert res["etag_after"] != ALL_KINDS["etag"]
    assert res["choice_after_regeneration"] == res["choice"]


def test_a_job_submitted_from_the_panel_shows_its_page(panel_run: Run) -> None:
    res, server, args = panel_run
    drawn = res["simple_drawn"]
    frames = label(drawn, "Frames: ")
    assert frames["text"] == "Frames: 1-250" and not frames["enabled"]
    assert prop(drawn, "v_render_output_root")["enabled"]
    assert not label(drawn, "Render output path: /farm/renders/")["enabled"]
    assert res["submit"]["ret"] == ["FINISHED"], res["submit"]
    st = res["job_state"]
    assert st["result_ok"], st
    assert server.jobs.jobs, (st, res["choice_before_submit"], res["submit"])
    job = server.jobs.jobs[-1]
    assert st["job_id"] == job["id"] and st["job_status"] == "paused"
    assert st["job_url"] == f"{server.url}/app/jobs/{job['id']}"
    sent = server.counters.job_submissions[-1]
    assert sent["initial_status"] == "paused" and sent["priority"] == 77
    assert "worker_tag" not in sent or not sent["worker_tag"]
    assert sent["settings"]["frames"] == "1-250"
    assert sent["settings"]["render_output_root"] == args["render_output_root"]
    assert sent["storage"]["shaman_checkout_id"] == st["checkout_path"]
    after = res["result_drawn"]
    for line in st["job_text"].splitlines():
        assert label(after, line)
    copy = next(e for e in after if e.get("op") == "shaman.copy_text" and e["text"] == "Copy")
    opened = next(e for e in after if e.get("op") == "wm.url_open")
    assert copy["props"] == {"text": st["job_url"]} and opened["props"] == {
        "url": st["job_url"]}
    assert opened["text"] == "Open"


def test_a_refused_job_stops_the_panel_before_any_upload_in_the_managers_words(
    panel_run: Run,
) -> None:
    res, _server, _args = panel_run
    refused = res["refused"]
    assert refused["raised"] and refused["uploads"] == 0, refused
    assert 'invalid range "one to ten"' in refused["error"]
    shown = " ".join(e["text"] or "" for e in entries(refused["drawn"], "label"))
    assert 'invalid range "one to ten"' in shown and "Nothing was uploaded" in shown


def test_a_job_refused_after_the_checkout_shows_the_checkout_kept(panel_run: Run) -> None:
    res, server, _args = panel_run
    kept = res["kept"]
    assert kept["raised"] and "injected refusal" in kept["error"], kept
    path = kept["kept_checkout"]
    assert path and server.checkout_dir(path).is_dir()
    row = label(kept["drawn"], "Checkout kept: ")
    assert row["text"] == f"Checkout kept: {path}"
    copy = [e for e in kept["drawn"] if e.get("op") == "shaman.copy_text"]
    assert {"text": path} in [e["props"] for e in copy]
