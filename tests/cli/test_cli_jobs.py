"""``submit --job-type ...`` and ``job-types`` as a user runs them, against the local
Manager's job API on loopback: the job's settings computed from a real .blend (no
Blender), ``--set`` typed and checked, refusals before any upload, ``--json`` documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shaman_addon.cli.main import main
from shaman_addon.jobs.scene_blend import read_context

from blend_templates import Project, Templates

REPO = Path(__file__).resolve().parents[2]
RENDER = "simple-blender-render"
CUSTOM = {"name": "custom-render", "label": "Custom", "etag": "c0ffee", "settings": [
    {"key": "frames", "type": "string", "eval": "f'{C.scene.frame_start}-{C.scene.frame_end}'",
     "required": True},
    {"key": "samples", "type": "int32", "eval": "C.scene.cycles.samples", "required": True},
    {"key": "quality", "type": "string", "choices": ["draft", "final"], "default": "draft"},
    {"key": "blendfile", "type": "string", "required": True, "visible": "web"},
]}


@pytest.fixture(scope="module")
def job_blend(blend_templates: Templates, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real .blend made by Blender (the plain template) with two small files."""
    return Project(blend_templates, tmp_path_factory.mktemp("cli-jobs"), [300, 500],
                   variant="plain").blend


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def submit(capsys: pytest.CaptureFixture[str], server: Any, blend: Path, cache: Path,
           *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, "submit", str(blend), "--server", server.url, "--cache-dir",
                   str(cache), "--quiet", *args)


@pytest.mark.local_server_only
def test_submit_sends_the_job_with_settings_computed_from_the_blend(
        capsys: pytest.CaptureFixture[str], shaman_server: Any, job_blend: Path,
        tmp_path: Path) -> None:
    tag = shaman_server.jobs.add_worker_tag("gpu-nodes")
    code, out, err = submit(
        capsys, shaman_server, job_blend, tmp_path, "--json", "--job-type", RENDER,
        "--set", "render_output_root=/farm/render", "--set", "chunk_size=4",
        "--job-name", "{blend_name} v1", "--priority", "70", "--worker-tag", "gpu-nodes",
        "--paused")
    assert code == 0, err
    doc = json.loads(out)
    [job] = shaman_server.jobs.jobs
    assert doc["job"]["id"] == job["id"] and doc["job"]["url"].endswith(f"/app/jobs/{job['id']}")
    assert (job["name"], job["priority"], job["status"], job["worker_tag"]) == (
        "shot v1", 70, "paused", tag["id"])
    scene = read_context(job_blend).scene
    render = scene.render
    settings = shaman_server.counters.job_submissions[-1]["settings"]  # as sent
    assert settings == shaman_server.counters.job_checks[-1]["settings"]
    assert job["settings"]["render_output_path"].startswith("/farm/render/shot v1/20")
    assert settings["frames"] == f"{scene.frame_start}-{scene.frame_end}"
    assert settings["chunk_size"] == 4 and settings["add_path_components"] == 0
    assert settings["render_output_path"] == "/farm/render/shot v1/{timestamp}/######"
    assert settings["fps"] == pytest.approx(render.fps / render.fps_base)
    assert (settings["format"], settings["image_file_extension"], settings["has_previews"],
            settings["scene"]) == (render.image_settings.file_format, render.file_extension,
                                   render.image_settings.use_preview, scene.name)
    assert settings["blendfile"] == f"{{jobs}}/{doc['checkout_path']}/shot.blend"


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--set", "chunk_size=abc"], 2,
     ["'chunk_size'", "a whole number (int32)", "--set chunk_size=abc"]),
    (["--set", "add_path_components=40"], 2, ["'add_path_components'", "from 0 to 32"]),
    (["--set", "frame=1-3"], 2, ["no setting 'frame'", "frames, chunk_size"]),
    (["--set", "has_previews=perhaps"], 2, ["true or false (bool)"]),
    (["--worker-tag", "nope"], 1, ["no worker tag 'nope'"]),
    (["--priority", "0"], 2, ["priority"]),
    (["--set", "frames=one to ten"], 1, ["invalid range"]),  # the Manager's own words
])
@pytest.mark.local_server_only
def test_refusals_stop_before_any_upload_with_a_json_error(
        capsys: pytest.CaptureFixture[str], shaman_server: Any, job_blend: Path,
        tmp_path: Path, args: list[str], code: int, words: list[str]) -> None:
    got, out, err = submit(capsys, shaman_server, job_blend, tmp_path, "--json",
                           "--job-type", RENDER, "--set", "render_output_root=/r", *args)
    assert got == code, err
    doc = json.loads(out)
    assert doc["exit_code"] == code
    for word in words:
        assert word in doc["error"] and word in err, (word, doc["error"])
    assert shaman_server.counters.bytes_received == 0
    assert shaman_server.jobs.jobs == []


@pytest.mark.local_server_only
def test_an_eval_the_command_line_cannot_compute_names_its_set(
        capsys: pytest.CaptureFixture[str], shaman_server: Any, job_blend: Path,
        tmp_path: Path) -> None:
    run_cli(capsys, "job-types", "--server", shaman_server.url, "--cache-dir", str(tmp_path))
    shaman_server.jobs.add_job_type(CUSTOM)  # after the cache was made: read again, once
    code, _, err = submit(capsys, shaman_server, job_blend, tmp_path,
                          "--job-type", "custom-render")
    assert code == 2
    assert ("The setting 'samples' of job type 'custom-render' cannot be computed: its "
            "expression 'C.scene.cycles.samples' reads C.scene.cycles") in err
    assert "--set samples=VALUE" in err
    assert "choices" not in err and shaman_server.counters.bytes_received == 0
    code, _, err = submit(capsys, shaman_server, job_blend, tmp_path, "--job-type",
                          "custom-render", "--set", "samples=64", "--set", "quality=best")
    assert code == 2 and "one of 'draft', 'final'" in err
    code, _, err = submit(capsys, shaman_server, job_blend, tmp_path, "--job-type",
                          "custom-render", "--set", "samples=64")
    assert code == 0, err
    [job] = shaman_server.jobs.jobs
    assert job["settings"]["samples"] == 64 and job["settings"]["quality"] == "draft"


@pytest.mark.local_server_only
def test_job_flags_need_a_job_type_and_the_type_must_exist(
        capsys: pytest.CaptureFixture[str], shaman_server: Any, job_blend: Path,
        tmp_path: Path) -> None:
    code, _, err = submit(capsys, shaman_server, job_blend, tmp_path, "--set", "a=1",
                          "--paused")
    assert code == 2 and "--paused, --set only apply to a render job" in err
    code, out, err = submit(capsys, shaman_server, job_blend, tmp_path, "--json",
                            "--job-type", "no-such-type")
    assert code == 1 and json.loads(out)["error_type"] == "JobTypeUnknown"
    assert "'simple-blender-render'" in err and "'echo-sleep-test'" in err
    assert shaman_server.counters.bytes_received == 0


@pytest.mark.local_server_only
def test_job_types_lists_settings_and_what_the_command_line_does(
        capsys: pytest.CaptureFixture[str], shaman_server: Any, tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "job-types", "--server", shaman_server.url, "--json",
                           "--cache-dir", str(tmp_path))
    assert code == 0
    doc = json.loads(out)
    types = {t["name"]: t for t in doc["job_types"]}
    assert set(types) == {RENDER, "echo-sleep-test"}
    how = {s["key"]: s for s in types[RENDER]["settings"]}
    assert {k: s["command_line"] for k, s in how.items()} == {
        "frames": "computed", "chunk_size": "default", "render_output_root": "needs_set",
        "add_path_components": "default", "render_output_path": "computed",
        "blendfile": "submission", "fps": "computed", "format": "computed",
        "image_file_extension": "computed", "has_previews": "computed", "scene": "computed"}
    assert how["add_path_components"]["expected"] == "a whole number (int32) from 0 to 32"
    assert how["frames"]["show_link_button"] and how["frames"]["shown_to_artist"]
    assert not how["fps"]["shown_to_artist"] and how["render_output_root"]["required"]
    # Cached: a job type added on the Manager shows only with --refresh.
    shaman_server.jobs.add_job_type(CUSTOM)
    code, out, _ = run_cli(capsys, "job-types", "--server", shaman_server.url, "--cache-dir",
                           str(tmp_path))
    assert code == 0 and "custom-render" not in out
    assert "render_output_root: text (string); submission: shown to the artist; required" \
        in out
    assert "command line: needs --set render_output_root=VALUE (required)" in out
    code, out, _ = run_cli(capsys, "job-types", "--server", shaman_server.url, "--cache-dir",
                           str(tmp_path), "--refresh")
    assert ("command line: needs --set samples=VALUE (reads C.scene.cycles, which only "
            "Blender knows)") in out


def test_job_types_as_a_process(shaman_server: Any, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SHAMAN_SERVER_URL"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    proc = subprocess.run([sys.executable, "-m", "shaman_addon", "job-types", "--server",
                           shaman_server.url], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"Job types of the Manager at {shaman_server.url}" in proc.stdout
    assert "frames: text (string); visible: shown to the artist; required" in proc.stdout
    assert (tmp_path / "xdg" / "shaman-submitter").is_dir()
