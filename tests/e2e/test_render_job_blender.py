"""End to end in real Blender: a render job submitted headless renders from the checkout.

A generated production with a camera (``render_production``) is submitted by a
headless Blender script, ``bpy.ops.shaman.submit(job_type='simple-blender-render',
job_settings=...)``, to the local Manager. The job it received has every required
setting, with the values Blender itself reads from the scene (no expression involved on
that side); its ``blendfile``, with ``{jobs}`` replaced by the server's jobs folder,
opens from the checkout alone (the source production moved away first) and frame N
renders pixel-equal to frame N of the source. Before that, refused jobs (a frame range
the Manager cannot parse, an unknown worker tag, settings that are not JSON) stop the
same script with the Manager's or the extension's words and upload nothing.

Three Blender processes of its own (the production is the session's): the headless
script, and one render each of the source and of the checkout.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from render_compare import differing_pixels, pixels_equal, render_frame
from render_production import RenderProduction

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "blender"))
from blender_scripts.runner import run_bpy

JOB_TYPE = "simple-blender-render"
FRAME = 5
OUTPUT_ROOT = "/farm/renders/"


@pytest.fixture
def production(render_production: RenderProduction, tmp_path: Path) -> RenderProduction:
    """A copy of the session's render production: this test moves it away."""
    return render_production.copy_to(tmp_path / "source")


def headless_args(server: Any, blend: Path) -> dict[str, Any]:
    good = {"render_output_root": OUTPUT_ROOT}
    return {
        "url": server.url,
        "blend": str(blend),
        "refusals": {
            "bad frames": {"server_url": server.url, "job_type": JOB_TYPE,
                           "job_settings": json.dumps({**good, "frames": "one to ten"})},
            "unknown tag": {"server_url": server.url, "job_type": JOB_TYPE,
                            "job_settings": json.dumps(good), "worker_tag": "no-such-tag"},
            "not json": {"server_url": server.url, "job_type": JOB_TYPE,
                         "job_settings": "{frames: 1-10"},
        },
        "ok": {"server_url": server.url, "job_type": JOB_TYPE,
               "job_settings": json.dumps({**good, "chunk_size": 2}), "priority": 60,
               "worker_tag": "gpu", "paused": True, "job_name": "nightly"},
    }


@pytest.mark.local_server_only
def test_a_headless_render_job_renders_from_the_checkout_like_the_source(
    production: RenderProduction, shaman_server: Any, tmp_path: Path
) -> None:
    server = shaman_server
    tag = server.jobs.add_worker_tag("gpu", "the GPU nodes")
    run = run_bpy("job_scenario.py", "headless",
                  json.dumps(headless_args(server, production.blend)),
                  user_dir=tmp_path / "blender-user")
    assert run.returncode == 0 and run.result is not None, run.explain()
    res = run.result

    # refusals: stopped before any upload, in words
    refused = res["refused"]
    assert all(r["raised"] and r["uploads"] == 0 for r in refused.values()), refused
    assert 'invalid range "one to ten"' in refused["bad frames"]["error"]
    assert "no-such-tag" in refused["unknown tag"]["error"]
    assert "'gpu'" in refused["unknown tag"]["error"]  # the tags it has are listed
    assert "job_settings" in refused["not json"]["error"]
    assert refused["bad frames"]["state_error"] in refused["bad frames"]["error"]  # the panel

    # the job the Manager received
    assert res["ok"]["ret"] == ["FINISHED"], (res["ok"], run.stdout[-3000:])
    st = res["job_state"]
    job = server.jobs.jobs[-1]
    sent = server.counters.job_submissions[-1]
    assert st["job_id"] == job["id"] and st["job_status"] == "paused"
    assert sent["type"] == JOB_TYPE and sent["name"] == "nightly"
    assert sent["priority"] == 60 and sent["initial_status"] == "paused"
    assert sent["worker_tag"] == tag["id"]
    assert sent["storage"]["shaman_checkout_id"] == st["checkout_path"]
    assert sent["type_etag"] == server.jobs.job_type(JOB_TYPE)["etag"]
    settings = sent["settings"]
    stock = server.jobs.job_type(JOB_TYPE)["settings"]
    required = {s["key"] for s in stock if s.get("required")}
    assert required <= set(settings), required - set(settings)
    # every value equals Blender's own reading of the scene
    blender = res["blender"]
    for key in ("frames", "format", "image_file_extension", "has_previews", "scene"):
        assert settings[key] == blender[key], key
    assert settings["fps"] == pytest.approx(blender["fps"])
    assert settings["frames"] == f"{production.frame_start}-{production.frame_end}"
    assert settings["scene"] == production.scene
    assert settings["fps"] == pytest.approx(production.fps / production.fps_base)
    assert settings["chunk_size"] == 2 and settings["add_path_components"] == 0
    assert settings["render_output_root"] == OUTPUT_ROOT
    assert settings["render_output_path"] == str(
        Path(OUTPUT_ROOT, "nightly", "{timestamp}", "######"))
    assert settings["blendfile"] == st["worker_path"]
    assert settings["blendfile"].startswith(f"{{jobs}}/{st['checkout_path']}/")

    # what the script printed: the job's lines, as every interface words them
    said = [ln.removeprefix("shaman: ") for ln in run.stdout.splitlines()
            if ln.startswith("shaman: ")]
    assert f"Job page: {server.url}/app/jobs/{job['id']}" in said, said
    assert any(job["id"] in ln and ln.startswith("Render job: ") for ln in said), said

    # the checkout alone renders frame N like the source
    source_png = render_frame(production.blend, FRAME, tmp_path / "source.png")
    shutil.move(str(production.root), str(tmp_path / "moved-away"))
    assert not production.blend.exists()
    checkout_png = render_frame(Path(settings["blendfile"]), FRAME, tmp_path / "checkout.png",
                                replace_jobs=server.storage / "jobs")
    assert pixels_equal(source_png, checkout_png), differing_pixels(source_png, checkout_png)
