"""The submission's job stage: the job is checked with the blend's checkout path as
collecting will place it (project root, a temporary copy's real name), and submitted
with the checkout path the server returned; progress says which step it is at."""

from __future__ import annotations

import queue
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from shaman_addon.app.jobs import JobChoice, manager_info, prepare_job
from shaman_addon.app.settings import CLI_NAMES, Settings
from shaman_addon.jobs.request import JobRequest
from shaman_addon.jobs.types import JobType
from shaman_addon.progress import Phase, ProgressEvent
from shaman_addon.shaman.settings import ClientSettings
from shaman_addon.submit import Submission, SubmitOptions, SubmitResult

from blend_templates import Project, Templates


def _values(job_type: JobType, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    return {"frames": "1-3", "chunk_size": 1, "render_output_root": "/render/",
            "add_path_components": 0, "render_output_path": f"/render/{name}/######",
            "fps": 24.0, "format": "PNG", "image_file_extension": ".png",
            "has_previews": False, "scene": "Scene", **given}


@pytest.fixture
def stage_server(shaman_server_factory: Callable[..., Any]) -> Any:
    return shaman_server_factory("manager")


@pytest.fixture
def stage_project(blend_templates: Templates, tmp_path: Path) -> Project:
    return Project(blend_templates, tmp_path, [10, 20, 30])


def _request(server: Any, blend: Path, cache: Path) -> JobRequest:
    info = manager_info(server.url, Settings(server_url=server.url), CLI_NAMES,
                        cache_dir=cache)
    request = prepare_job(info, JobChoice("simple-blender-render"), blend=blend,
                          evaluate=_values)
    assert request is not None
    return request


def _run(server: Any, blend: Path, tmp_path: Path, *,
         events: queue.SimpleQueue[ProgressEvent] | None = None, **kw: Any) -> SubmitResult:
    cache = tmp_path / "cache"
    options = SubmitOptions(server_url=server.url, cache_dir=cache,
                            client_settings=ClientSettings(max_attempts=2, backoff_s=0.01),
                            job=_request(server, blend, cache), **kw)
    return Submission(blend, options, events=events).run()


def _blendfiles(server: Any) -> tuple[str, str]:
    checked = server.counters.job_checks[-1]["settings"]["blendfile"]
    submitted = server.counters.job_submissions[-1]["settings"]["blendfile"]
    return checked, submitted


@pytest.mark.parametrize("case", ["project root above", "temporary copy"])
def test_the_checked_blendfile_is_where_collecting_puts_the_blend(
        stage_server: Any, stage_project: Project, tmp_path: Path, case: str) -> None:
    if case == "project root above":
        blend = stage_project.blend
        result = _run(stage_server, blend, tmp_path, project_root=tmp_path,
                      checkout_template="fixed")
        expected = "project/shot.blend"
    else:  # unsaved work: a copy elsewhere, submitted under the file's real name
        blend = tmp_path / "tmpcopies" / "copy-123.blend"
        blend.parent.mkdir()
        shutil.copyfile(stage_project.blend, blend)
        result = _run(stage_server, blend, tmp_path, checkout_template="fixed",
                      as_name=str(stage_project.project / "renamed.blend"))
        expected = "renamed.blend"
    assert result.blend_checkout_path == expected
    assert _blendfiles(stage_server) == (f"{{jobs}}/fixed/{expected}",) * 2
    assert (stage_server.storage / "jobs" / "fixed" / expected).is_file()


def test_a_taken_checkout_name_is_submitted_with_the_path_the_server_returned(
        stage_server: Any, stage_project: Project, tmp_path: Path) -> None:
    first = _run(stage_server, stage_project.blend, tmp_path, checkout_template="fixed")
    second = _run(stage_server, stage_project.blend, tmp_path, checkout_template="fixed")
    assert first.checkout_path == "fixed" and second.checkout_path != "fixed"
    assert second.checkout_path is not None and second.checkout_path.startswith("fixed-")
    checked, submitted = _blendfiles(stage_server)
    assert checked == "{jobs}/fixed/shot.blend"  # asked for
    assert submitted == f"{{jobs}}/{second.checkout_path}/shot.blend"  # made
    doc = stage_server.counters.job_submissions[-1]
    assert doc["storage"]["shaman_checkout_id"] == second.checkout_path
    assert second.job is not None and second.job.checkout_path == second.checkout_path


def test_progress_says_checking_before_collecting_and_submitting_after_the_checkout(
        stage_server: Any, stage_project: Project, tmp_path: Path) -> None:
    events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    result = _run(stage_server, stage_project.blend, tmp_path, events=events)
    seen: list[tuple[Phase, str]] = []
    while not events.empty():
        event = events.get_nowait()
        if not seen or seen[-1] != (event.phase, event.message):
            seen.append((event.phase, event.message))
    job_steps = [(p, m) for p, m in seen if p is Phase.RENDER_JOB]
    assert job_steps == [(Phase.RENDER_JOB, "checking the render job"),
                         (Phase.RENDER_JOB, "submitting the render job")]
    phases = [p for p, _m in seen]
    assert phases.index(Phase.RENDER_JOB) < phases.index(Phase.HASHING)
    assert phases.index(Phase.CHECKING_OUT) < len(phases) - 1 - phases[::-1].index(
        Phase.RENDER_JOB)
    assert result.job is not None
    assert seen[-1] == (Phase.DONE, f"Done: checkout {result.checkout_path}; render job "
                        f"{result.job.id}")
    assert ProgressEvent(Phase.RENDER_JOB, message="checking the render job").status_line() \
        == "Render job: checking the render job"
