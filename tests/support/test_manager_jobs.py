"""The local Manager's job API (``manager_jobs.py``) against a real Manager's recording.

``data/real-manager-jobs-transcript.json`` holds what a real Flamenco Manager 3.9
answered to the job API (after one Shaman checkout). Replayed in order against the local
server, every answer has the recorded status, Content-Type and body, once ids,
timestamps and the storage folder are written as the recording's. The other tests here
cover what the recording does not: the knobs other tests use (an edited job type, a
Manager too old, Shaman disabled), the frame syntax, the tasks, the counters.

Only ``http.client`` talks to the server here, never our own client.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from manager_jobs import frame_list, load_stock_job_types
from shaman_server import ShamanServer

pytestmark = pytest.mark.local_server_only

DATA = Path(__file__).resolve().parent / "data"
TRANSCRIPT = DATA / "real-manager-jobs-transcript.json"
RECORDED_STORAGE = "/srv/farm/shared"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
RENDER_STAMP = re.compile(r"\d{4}-\d\d-\d\d_\d{6}")
RENDER_ETAG = "6f6b4fce9301252a6ab4a9a213a2f0ad447eccd5"


def _steps() -> list[dict[str, Any]]:
    return list(json.loads(TRANSCRIPT.read_text(encoding="utf-8"))["steps"])


def _send(server: Any, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, str | None, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read().decode()
    finally:
        conn.close()


def get(server: Any, path: str) -> tuple[int, Any]:
    status, _, body = _send(server, "GET", path)
    return status, json.loads(body) if body else None


def post(server: Any, path: str, doc: Any) -> tuple[int, Any]:
    status, _, body = _send(server, "POST", path, json.dumps(doc).encode(),
                            {"Content-Type": "application/json"})
    return status, json.loads(body) if body else None


def _normal(text: str) -> str:
    text = UUID.sub("<uuid>", text)
    text = RFC3339.sub("<time>", text)
    return RENDER_STAMP.sub("<stamp>", text)


def job(**changes: Any) -> dict[str, Any]:
    """The recording's valid job document, with ``changes`` (settings: merged; None drops)."""
    doc: dict[str, Any] = {
        "name": "sh010 lighting", "type": "simple-blender-render", "type_etag": RENDER_ETAG,
        "priority": 50, "submitter_platform": "linux",
        "settings": {"frames": "1-10", "chunk_size": 3, "render_output_root": "/render/",
                     "add_path_components": 0,
                     "render_output_path": "/render/sh010-lighting/{timestamp}/######",
                     "blendfile": "{jobs}/sh010-lighting/shots/sh010/main.blend",
                     "fps": 24.0, "format": "PNG", "image_file_extension": ".png",
                     "has_previews": False, "scene": "Scene"},
        "metadata": {"user.name": "ana"}, "storage": {"shaman_checkout_id": "sh010-lighting"},
    }
    for key, value in changes.pop("settings", {}).items():
        if value is None:
            doc["settings"].pop(key, None)
        else:
            doc["settings"][key] = value
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


@pytest.fixture
def manager(shaman_server_factory: Callable[..., ShamanServer]) -> ShamanServer:
    return shaman_server_factory("manager")


# ---------------------------------------------------------------------------------------
# The recording


def test_recording_covers_every_answer_the_brief_names() -> None:
    steps = _steps()
    assert len(steps) == 36
    seen = {(s["request"]["path"].split("/")[3], s["response"]["status"]) for s in steps}
    assert {("jobs", 204), ("jobs", 400), ("jobs", 412), ("jobs", 500), ("jobs", 404),
            ("jobs", 200), ("worker-mgt", 200), ("configuration", 200)} <= seen


def test_replay_matches_real_manager(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    server = ShamanServer(storage, strict_paths=False).start()
    try:
        ids: dict[str, str] = {}  # a recorded id -> ours
        mismatches: list[str] = []
        for number, step in enumerate(_steps()):
            request, expected = step["request"], step["response"]
            if step["label"] == "shaman: checkout for the job":
                # The recording left out the upload of this 35-byte file: store a blob.
                spec = json.loads(request["body"])["files"][0]
                blob = server.stored_path(spec["sha"], spec["size"])
                blob.parent.mkdir(parents=True, exist_ok=True)
                blob.write_bytes(b"x" * spec["size"])
            path, body = request["path"], request.get("body")
            for recorded, ours in ids.items():
                path = path.replace(recorded, ours)
                body = body.replace(recorded, ours) if body is not None else None
            status, content_type, text = _send(
                server, request["method"], path,
                body.encode() if body is not None else None, request["headers"])
            text = text.replace(str(storage), RECORDED_STORAGE)
            recorded_ids = UUID.findall(expected["body"])
            our_ids = UUID.findall(text)
            if len(recorded_ids) == len(our_ids):
                ids.update(zip(recorded_ids, our_ids, strict=True))
            got = (status, content_type, _normal(text))
            want = (expected["status"], expected["content_type"], _normal(expected["body"]))
            if got != want:
                mismatches.append(f"step {number} ({step['label']}):\n  got  {got}\n"
                                  f"  want {want}")
        assert not mismatches, "\n".join(mismatches)
        assert len(ids) >= 3 + 5  # the tag, two jobs and five tasks came back with ids
    finally:
        server.stop()


def test_stock_job_types_are_the_recorded_ones(manager: ShamanServer) -> None:
    recorded = next(s for s in _steps() if s["label"] == "job types")
    status, doc = get(manager, "/api/v3/jobs/types")
    assert status == 200
    assert doc == json.loads(recorded["response"]["body"])
    assert [t["name"] for t in load_stock_job_types()] == [
        "echo-sleep-test", "simple-blender-render"]


# ---------------------------------------------------------------------------------------
# Knobs other tests use


def test_an_edited_job_type_refuses_its_old_etag_once(manager: ShamanServer) -> None:
    new = manager.jobs.bump_etag("simple-blender-render")
    assert new != RENDER_ETAG
    assert get(manager, "/api/v3/jobs/type/simple-blender-render")[1]["etag"] == new
    status, doc = post(manager, "/api/v3/jobs/check", job())
    assert (status, doc["code"]) == (412, 412)
    assert post(manager, "/api/v3/jobs/check", job(type_etag=new)) == (204, None)
    assert post(manager, "/api/v3/jobs/check", job(type_etag=None)) == (204, None)
    # the documents are counted in order, refused ones too
    assert [d.get("type_etag") for d in manager.counters.job_checks] == [
        RENDER_ETAG, new, None]
    assert manager.counters.job_submissions == []
    assert manager.counters.requests["jobs_check"] == 3


def test_stale_etags_answers_412_to_every_check_and_submission(manager: ShamanServer) -> None:
    manager.jobs.stale_etags = True
    new = manager.jobs.bump_etag("simple-blender-render")
    for path in ("/api/v3/jobs/check", "/api/v3/jobs"):
        assert post(manager, path, job(type_etag=new))[0] == 412
    assert len(manager.counters.job_checks) == len(manager.counters.job_submissions) == 1
    assert manager.jobs.jobs == []
    _send(manager, "POST", "/test/reset")
    assert manager.jobs.stale_etags is False
    assert post(manager, "/api/v3/jobs", job(type_etag=new))[0] == 200


def test_a_manager_too_old_has_no_job_api_but_keeps_shaman(manager: ShamanServer) -> None:
    manager.jobs.too_old = True
    for path in ("/api/v3/version", "/api/v3/jobs/types", "/api/v3/worker-mgt/tags",
                 "/api/v3/configuration/variables/users/linux"):
        assert get(manager, path) == (404, {"message": "Not Found"}), path
    assert post(manager, "/api/v3/jobs/check", job()) == (404, {"message": "Not Found"})
    assert get(manager, "/api/v3/configuration")[0] == 200
    status, doc = post(manager, "/api/v3/shaman/checkout/requirements", {"files": []})
    assert (status, doc) == (200, {"files": []})


def test_shaman_disabled_points_jobs_at_the_storage_itself(manager: ShamanServer) -> None:
    jobs_dir = str(manager.storage / "jobs")
    assert get(manager, "/api/v3/configuration/variables/users/linux")[1]["jobs"][
        "value"] == jobs_dir
    manager.faults.shaman_disabled = True
    storage = str(manager.storage)
    assert get(manager, "/api/v3/configuration")[1]["shamanEnabled"] is False
    assert get(manager, "/api/v3/configuration/shared-storage/users/linux")[1] == {
        "audience": "users", "location": storage, "platform": "linux",
        "shamanEnabled": False}
    assert get(manager, "/api/v3/configuration/variables/workers/windows")[1]["jobs"][
        "value"] == storage
    status, doc = post(manager, "/api/v3/shaman/checkout/requirements", {"files": []})
    assert (status, doc) == (503, {"code": 503, "message": "shaman server not active"})
    assert post(manager, "/api/v3/jobs/check", job(storage={}))[0] == 204


def test_faults_apply_to_job_endpoints(manager: ShamanServer) -> None:
    manager.faults.fail_next("jobs_submit", status=503, message="try later")
    assert post(manager, "/api/v3/jobs", job()) == (503, {"code": 503, "message": "try later"})
    assert post(manager, "/api/v3/jobs", job())[0] == 200
    assert manager.counters.statuses[("jobs_submit", 503)] == 1


def test_the_server_process_serves_the_job_api_and_its_knobs(server_process: Any) -> None:
    proc = server_process()
    assert get(proc, "/api/v3/version")[1]["shortversion"] == "3.9-beta1"
    assert post(proc, "/test/fault", {"call": "bump_etag",
                                      "kwargs": {"name": "simple-blender-render"}})[0] == 204
    assert post(proc, "/api/v3/jobs/check", job())[0] == 412
    assert post(proc, "/test/fault", {"call": "too_old", "kwargs": {"value": True}})[0] == 204
    assert get(proc, "/api/v3/jobs/types")[0] == 404
    counters = get(proc, "/test/counters")[1]
    assert [d["name"] for d in counters["job_checks"]] == ["sh010 lighting"]
    assert post(proc, "/test/fault", {"call": "bump_etag", "kwargs": {"name": "nope"}})[0] == 400


# ---------------------------------------------------------------------------------------
# What the stock job types' scripts accept and make


@pytest.mark.parametrize("frames", ["47", "1-30", "3, 5-10, 47-327", " 7 ,8"])
def test_frame_syntax_the_chunker_accepts(manager: ShamanServer, frames: str) -> None:
    assert post(manager, "/api/v3/jobs/check", job(settings={"frames": frames})) == (204, None)


def test_frame_list() -> None:
    assert frame_list("3, 5-7, 6-8, 47") == [3, 5, 6, 7, 8, 47]


@pytest.mark.parametrize("frames", ["", "1-", "a-3", "1-3,,4", "10-1", "1..3"])
def test_frame_syntax_the_chunker_refuses(manager: ShamanServer, frames: str) -> None:
    status, doc = post(manager, "/api/v3/jobs/check", job(settings={"frames": frames}))
    assert status == 400
    assert doc["message"].startswith(f"GoError: invalid range {json.dumps(frames)}:")
    assert doc["message"].endswith("job_compilers.jsFrameChunker (native)")


@pytest.mark.parametrize("fmt", ["FFMPEG", "AVI_JPEG", "AVI_RAW"])
def test_movie_formats_refused_in_the_scripts_words(manager: ShamanServer, fmt: str) -> None:
    status, doc = post(manager, "/api/v3/jobs", job(settings={"format": fmt, "frames": "x"}))
    assert (status, doc["code"]) == (400, 400)
    assert doc["message"].startswith(f'This job type only renders images, and not "{fmt}"')
    assert manager.jobs.jobs == []


def test_tasks_are_chunked_over_the_frames(manager: ShamanServer) -> None:
    status, made = post(manager, "/api/v3/jobs", job(settings={
        "frames": "3, 5-10, 12", "chunk_size": "4"}))
    assert status == 200
    assert made["settings"]["chunk_size"] == "4"  # as sent: the Manager does not type it
    tasks = get(manager, f"/api/v3/jobs/{made['id']}/tasks")[1]["tasks"]
    assert [(t["name"], t["steps_total"], t["task_type"]) for t in tasks] == [
        ("render-3,5-7", 4, "blender"), ("render-8-10,12", 4, "blender"),
        ("preview-video", 1, "ffmpeg")]
    assert [t["index_in_job"] for t in tasks] == [1, 2, 3]


def test_exr_without_previews_gets_no_video_task(manager: ShamanServer) -> None:
    made = post(manager, "/api/v3/jobs", job(settings={"format": "OPEN_EXR"}))[1]
    tasks = get(manager, f"/api/v3/jobs/{made['id']}/tasks")[1]["tasks"]
    assert [t["name"] for t in tasks] == ["render-1-3", "render-4-6", "render-7-9",
                                          "render-10"]


def test_a_submitted_job_as_stored(manager: ShamanServer) -> None:
    manager.jobs.clock = lambda: 1_780_000_000_123_456_000  # 2026-05-28 20:26:40 UTC
    tag = manager.jobs.add_worker_tag("gpu", "GPUs")
    status, made = post(manager, "/api/v3/jobs", job(
        initial_status="paused", worker_tag=tag["id"], priority=1000,
        settings={"fps": 23.976}))
    assert status == 200
    assert made["status"] == "paused"
    assert made["priority"] == 1000
    assert made["worker_tag"] == tag["id"]
    assert made["submitter_platform"] == ""
    assert made["storage"] == {"shaman_checkout_id": "sh010-lighting"}
    assert made["metadata"] == {"user.name": "ana"}
    assert made["created"] == "2026-05-28T20:26:40.123456Z"
    assert "{timestamp}" not in made["settings"]["render_output_path"]
    assert RENDER_STAMP.search(made["settings"]["render_output_path"])
    assert made["settings"]["fps"] == 23.976
    assert get(manager, f"/api/v3/jobs/{made['id']}") == (200, made)
    assert manager.jobs.jobs == [made]
    assert get(manager, f"/api/v3/jobs/{made['id']}/what-would-delete-do")[1] == {
        "shaman_checkout": True}
    assert manager.counters.job_submissions[0]["initial_status"] == "paused"


def test_an_unknown_tag_passes_the_check_and_fails_the_submission(
        manager: ShamanServer) -> None:
    doc = job(worker_tag="00000000-0000-0000-0000-000000000000")
    assert post(manager, "/api/v3/jobs/check", doc) == (204, None)
    assert post(manager, "/api/v3/jobs", doc) == (
        500, {"code": 500, "message": "error persisting job in database"})


def test_worker_tags_created_and_listed(manager: ShamanServer) -> None:
    status, made = post(manager, "/api/v3/worker-mgt/tags", {"name": "cpu"})
    assert status == 200 and set(made) == {"id", "name"}
    assert get(manager, "/api/v3/worker-mgt/tags")[1] == {"tags": [made]}
    assert post(manager, "/api/v3/worker-mgt/tags", {"name": "cpu"})[0] == 500
    assert post(manager, "/api/v3/worker-mgt/tags", {"description": "x"})[0] == 400


def test_an_added_job_type_is_served_and_accepted(manager: ShamanServer) -> None:
    manager.jobs.add_job_type({"name": "custom", "label": "Custom", "etag": "e1",
                               "settings": [{"key": "flag", "type": "bool"}]})
    names = [t["name"] for t in get(manager, "/api/v3/jobs/types")[1]["job_types"]]
    assert names == ["custom", "echo-sleep-test", "simple-blender-render"]
    assert post(manager, "/api/v3/jobs", job(type="custom", type_etag="e1"))[0] == 200


def test_schema_refusals(manager: ShamanServer) -> None:
    prefix = "request body has an error: doesn't match schema #/components/schemas/SubmittedJob: "
    status, doc = post(manager, "/api/v3/jobs", job(priority="high"))
    assert (status, doc) == (400, {"message": prefix + 'Error at "/priority": value must be '
                                   'an integer'})
    status, doc = post(manager, "/api/v3/jobs/check", job(name=None))
    assert doc == {"message": prefix + 'Error at "/name": property "name" is missing'}
    status, _, text = _send(manager, "POST", "/api/v3/jobs", b"{", {})
    assert status == 400 and "failed to decode request body" in text
    assert get(manager, "/api/v3/jobs/check")[0] == 405


def test_the_fixture_server_checks_out_where_jobs_points(manager: ShamanServer) -> None:
    """``{jobs}`` as the Manager reports it is the folder checkouts are made in."""
    data = b"blend"
    spec = {"sha": hashlib.sha256(data).hexdigest(), "size": len(data), "path": "a/b.blend"}
    _send(manager, "POST", f"/api/v3/shaman/files/{spec['sha']}/{spec['size']}", data,
          {"Content-Type": "application/octet-stream"})
    made = post(manager, "/api/v3/shaman/checkout/create",
                {"files": [spec], "checkoutPath": "shot"})[1]
    jobs = get(manager, "/api/v3/configuration/variables/workers/linux")[1]["jobs"]["value"]
    assert (Path(jobs) / made["checkoutPath"] / "a" / "b.blend").read_bytes() == data
    assert get(manager, "/api/v3/configuration")[1]["storageLocation"] == jobs
