"""The job document: what a real Manager 3.9 was sent and accepted, made by one function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shaman_addon.jobs.document import checkout_blendfile, job_document
from shaman_addon.jobs.request import JobRequest
from shaman_addon.jobs.types import parse_job_types

TRANSCRIPT = (Path(__file__).resolve().parents[1] / "support" / "data"
              / "real-manager-jobs-transcript.json")


def _steps() -> dict[str, dict[str, Any]]:
    doc = json.loads(TRANSCRIPT.read_text("utf-8"))
    return {step["label"]: step for step in doc["steps"]}


def _sent(label: str) -> dict[str, Any]:
    return json.loads(_steps()[label]["request"]["body"])


def _request(recorded: dict[str, Any], **kw: Any) -> JobRequest:
    types = parse_job_types(json.loads(_steps()["job types"]["response"]["body"]), url="rec")
    job_type = next(t for t in types if t.name == recorded["type"])
    settings = {k: v for k, v in recorded["settings"].items() if k != "blendfile"}
    return JobRequest(job_type=job_type, name=recorded["name"], settings=settings,
                      priority=recorded["priority"], metadata=recorded["metadata"], **kw)


def test_the_document_is_the_one_a_real_manager_accepted() -> None:
    recorded = _sent("submit the job")
    doc = job_document(_request(recorded),
                       blendfile=checkout_blendfile("sh010-lighting", "shots/sh010/main.blend"),
                       checkout_path="sh010-lighting")
    assert doc == recorded
    # Same fields in the same order, so the bytes sent match the recording's.
    assert json.dumps(doc) == json.dumps(recorded)


def test_paused_with_a_worker_tag_adds_initial_status_and_the_tag_id() -> None:
    recorded = _sent("submit paused, with a worker tag")
    doc = job_document(_request(recorded, paused=True, worker_tag="gpu-nodes"),
                       blendfile="{jobs}/sh010-lighting/shots/sh010/main.blend",
                       checkout_path="sh010-lighting",
                       worker_tag_id="85604b58-9483-4ff0-a70e-a20af1de5ccc")
    assert doc == recorded


def test_without_a_checkout_the_storage_is_empty_and_blendfile_is_the_given_path() -> None:
    recorded = _sent("check a valid job")
    doc = job_document(_request(recorded), blendfile="/srv/farm/shared/sprite/main.blend",
                       checkout_path=None)
    assert doc["storage"] == {}
    assert doc["settings"]["blendfile"] == "/srv/farm/shared/sprite/main.blend"
    assert "initial_status" not in doc and "worker_tag" not in doc


def test_a_blendfile_among_the_values_never_wins_over_the_checkout() -> None:
    recorded = _sent("check a valid job")
    request = _request(recorded)
    request = JobRequest(job_type=request.job_type, name=request.name,
                         settings={**request.settings, "blendfile": "/elsewhere.blend"})
    doc = job_document(request, blendfile=checkout_blendfile("/a/b/", "/c.blend"),
                       checkout_path="a/b")
    assert doc["settings"]["blendfile"] == "{jobs}/a/b/c.blend"
