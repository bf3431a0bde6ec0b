"""Render jobs (issue 12) in the fault table: real .blend templates through
``Submission(...).run()`` against the local Manager's job API on loopback. Every refusal
must come before a single byte is uploaded (the server's counters say 0), in the
Manager's own words; a job failing after the checkout names the checkout, and the job-
only resubmission sends no file bytes; a Manager without Shaman renders a file inside its
shared storage where it is, and refuses one outside.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shaman_addon.app import present
from shaman_addon.app.jobs import JobChoice, manager_info, prepare_job
from shaman_addon.app.settings import CLI_NAMES, Settings
from shaman_addon.errors import (
    Cancelled,
    JobNotSubmitted,
    JobRefused,
    JobTypeStale,
    SharedStorageUnavailable,
    WorkerTagUnknown,
)
from shaman_addon.jobs.catalog import load_manager_info
from shaman_addon.jobs.request import JobRequest
from shaman_addon.jobs.types import JobType
from shaman_addon.progress import Phase
from shaman_addon.submit import Submission, SubmitResult

from blend_templates import Project, Templates
from fault_helpers import Options, PhaseHook, disk_state, error_of

RENDER = "simple-blender-render"


def stock_values(job_type: JobType, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """A plain Evaluator: what Blender would compute for a 1-10 PNG render of 'Scene'."""
    values: dict[str, Any] = {s.key: s.default for s in job_type.settings
                              if s.default is not None}
    values.update({"frames": "1-10", "chunk_size": 3, "render_output_root": "/render/",
                   "render_output_path": f"/render/{name}/{{timestamp}}/######",
                   "fps": 24.0, "format": "PNG", "image_file_extension": ".png",
                   "has_previews": False, "scene": "Scene"})
    values.update(given)
    return values


@pytest.fixture
def job_project(blend_templates: Templates, tmp_path: Path) -> Project:
    return Project(blend_templates, tmp_path, [1 + i * 50_000 for i in range(6)])


@pytest.fixture
def job_server(shaman_server_factory: Callable[..., Any]) -> Any:
    return shaman_server_factory("manager")


class JobRun:
    """One test's submissions: options made by the table's ``Options``, the job prepared
    the way every interface prepares it (``app.jobs``)."""

    def __init__(self, server: Any, project: Project, tmp_path: Path) -> None:
        self.server, self.project, self.tmp_path = server, project, tmp_path
        self.cache = tmp_path / "cache"

    def request(self, **choice: Any) -> JobRequest:
        info = manager_info(self.server.url, Settings(server_url=self.server.url), CLI_NAMES,
                            cache_dir=self.cache)
        choice.setdefault("name", "{blend_name} lighting")
        request = prepare_job(info, JobChoice(RENDER, **choice), blend=self.project.blend,
                              evaluate=stock_values)
        assert request is not None
        return request

    def submit(self, request: JobRequest | None, blend: Path | None = None,
               **kw: Any) -> SubmitResult:
        options = Options({})(self.server.url, self.tmp_path, job=request, **kw)
        return Submission(blend or self.project.blend, options).run()

    def uploads(self) -> int:
        return self.server.counters.requests.get("upload", 0)


@pytest.fixture
def job_run(job_server: Any, job_project: Project, tmp_path: Path) -> JobRun:
    return JobRun(job_server, job_project, tmp_path)


def _history(run: JobRun) -> dict[str, Any]:
    lines = (run.cache / "history.jsonl").read_text("utf-8").splitlines()
    return json.loads(lines[-1])


# -- the job goes through -------------------------------------------------------------


def test_the_job_is_checked_before_any_upload_and_submitted_for_the_checkout(
        job_run: JobRun, fault_row: Callable[..., Any]) -> None:
    server = job_run.server
    seen: dict[str, int] = {}
    hook = PhaseHook(Phase.RENDER_JOB, lambda: seen.update(
        uploads=job_run.uploads(), checks=len(server.counters.job_checks)))
    options = Options({})(server.url, job_run.tmp_path, job=job_run.request())
    result = Submission(job_run.project.blend, options, events=hook).run()  # type: ignore[arg-type]
    assert seen == {"uploads": 0, "checks": 0}  # the check came before any upload
    assert hook.phases[:2] == [Phase.COLLECTING, Phase.RENDER_JOB]
    checked, submitted = server.counters.job_checks, server.counters.job_submissions
    assert len(checked) == 1 and len(submitted) == 1
    assert checked[0] == submitted[0]  # checked exactly as submitted
    doc = submitted[0]
    assert result.checkout_path is not None and result.job is not None
    blend_cp = job_run.project.checkout_path(job_run.project.blend)
    assert doc["settings"]["blendfile"] == f"{{jobs}}/{result.checkout_path}/{blend_cp}"
    assert (server.storage / "jobs" / result.checkout_path / blend_cp).is_file()
    assert doc["storage"] == {"shaman_checkout_id": result.checkout_path}
    assert doc["name"] == "shot lighting" and doc["type_etag"] == server.jobs.job_type(
        RENDER)["etag"]
    assert doc["metadata"]["user.name"] and doc["metadata"]["blendfile"] == "shot.blend"
    stored = [j for j in server.jobs.jobs if j["id"] == result.job.id]
    assert stored and stored[0]["status"] == result.job.status == "queued"
    assert result.job.url == f"{server.url}/app/jobs/{result.job.id}"
    assert result.to_json()["job"]["id"] == result.job.id
    record = _history(job_run)
    assert record["job"]["id"] == result.job.id and record["job"]["url"] == result.job.url
    lines = present.result_lines(result)
    assert f"Job page: {result.job.url}" in lines
    fault_row("render job submitted after the checkout", area="fault",
              saw=" / ".join(lines[:1] + lines[-2:]),
              end_state=f"check before the first upload (0 uploads then); checked document "
              f"== submitted; blendfile {doc['settings']['blendfile']} exists; job "
              f"{result.job.status}; history has the job's id and page",
              measured={"uploads": job_run.uploads()})


def test_paused_with_a_worker_tag_sends_the_tags_id(job_run: JobRun) -> None:
    tag = job_run.server.jobs.add_worker_tag("gpu-nodes", "machines with a GPU")
    result = job_run.submit(job_run.request(worker_tag="gpu-nodes", paused=True, priority=70))
    doc = job_run.server.counters.job_submissions[-1]
    assert doc["worker_tag"] == tag["id"] and doc["initial_status"] == "paused"
    assert doc["priority"] == 70
    assert result.job is not None and result.job.status == "paused"


def test_a_dry_run_checks_the_job_and_submits_nothing(job_run: JobRun) -> None:
    result = job_run.submit(job_run.request(), dry_run=True)
    counters = job_run.server.counters
    assert len(counters.job_checks) == 1 and counters.job_submissions == []
    assert result.job is None and result.checkout_path is None and job_run.uploads() == 0


# -- refused before any upload ----------------------------------------------------------


REFUSALS: dict[str, tuple[dict[str, Any], type[Exception], str]] = {
    "bad frames": ({"given": {"frames": "one to ten"}}, JobRefused, "invalid range"),
    "movie format": ({"given": {"format": "FFMPEG"}}, JobRefused,
                     'only renders images, and not "FFMPEG"'),
    "stale etag twice": ({}, JobTypeStale, "refresh the job type"),
    "unknown worker tag": ({"worker_tag": "gone"}, WorkerTagUnknown, "'gone'"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_job_stops_before_any_upload(job_run: JobRun, case: str,
                                               fault_row: Callable[..., Any]) -> None:
    choice, kind, words = REFUSALS[case]
    server = job_run.server
    if case == "unknown worker tag":  # known when the job was prepared, gone since
        request = replace(job_run.request(), worker_tag=choice["worker_tag"])
    else:
        request = job_run.request(**choice)
    if case == "stale etag twice":
        server.jobs.stale_etags = True
    err = error_of(lambda: job_run.submit(request))
    assert isinstance(err, kind), repr(err)
    assert words in str(err) and "Nothing was uploaded" in str(err)
    counters = server.counters
    assert job_run.uploads() == 0 and counters.bytes_received == 0
    assert counters.requests.get("requirements", 0) == 0 and counters.checkouts == []
    assert counters.job_submissions == []
    assert disk_state(server.storage).checkouts == []
    record = _history(job_run)
    assert record["status"] == "failed" and words in record["error"]
    fault_row(f"render job refused: {case}", area="bad input", saw=str(err),
              end_state="0 uploads, 0 bytes received, no requirements call, no checkout, "
              "no job; history says failed",
              measured={"checks": len(counters.job_checks)})


def test_a_stale_etag_once_is_read_again_and_the_job_goes_through(
        job_run: JobRun, fault_row: Callable[..., Any]) -> None:
    request = job_run.request()
    new_etag = job_run.server.jobs.bump_etag(RENDER)
    result = job_run.submit(request)
    checks = job_run.server.counters.job_checks
    assert [c["type_etag"] for c in checks] == [request.job_type.etag, new_etag]
    assert job_run.server.counters.job_submissions[-1]["type_etag"] == new_etag
    cached = load_manager_info(job_run.server.url, job_run.cache)
    assert cached is not None and cached.job_type(RENDER).etag == new_etag  # type: ignore[union-attr]
    assert result.job is not None
    fault_row("render job: the job type changed once (412)", saw=result.job.status,
              end_state="job type read again, checked again with the new etag, submitted; "
              "the cache holds the new etag", measured={"checks": len(checks)})


# -- fails after the checkout -------------------------------------------------------------


def test_a_job_failing_after_the_checkout_names_it_and_resubmitting_sends_no_bytes(
        job_run: JobRun, fault_row: Callable[..., Any]) -> None:
    server = job_run.server
    request = job_run.request()
    server.faults.fail_next("jobs_submit", status=500, message="database is locked")
    err = error_of(lambda: job_run.submit(request))
    assert isinstance(err, JobNotSubmitted), repr(err)
    assert err.checkout_path in str(err) and "database is locked" in str(err)
    assert (server.storage / "jobs" / err.checkout_path).is_dir()
    assert present.outcome_json(_outcome(err))["checkout_path"] == err.checkout_path
    assert _history(job_run)["checkout_path"] == err.checkout_path
    sent = server.counters.bytes_received
    assert sent >= job_run.project.total_bytes
    again = job_run.submit(request)
    assert server.counters.bytes_received == sent  # not one more file byte
    assert again.bytes_uploaded == 0 and again.files_already_stored == again.files_total
    assert again.job is not None
    assert [job["id"] for job in server.jobs.jobs] == [again.job.id]  # one job, no twin
    doc = server.counters.job_submissions[-1]
    assert doc["storage"]["shaman_checkout_id"] == again.checkout_path
    fault_row("render job fails after the checkout (500 on /jobs)", saw=str(err),
              end_state=f"checkout {err.checkout_path} on the server; the same submission "
              f"again sent 0 file bytes and submitted job {again.job.status}",
              measured={"bytes_before": sent, "bytes_after": server.counters.bytes_received})


class _CancelAtJobSubmit(PhaseHook):
    """Cancels the submission the moment it starts submitting the job: after the checkout
    (which a cancel leaves to finish), before ``/jobs``."""

    def __init__(self) -> None:
        super().__init__(Phase.RENDER_JOB, lambda: None)
        self.submission: Submission | None = None

    def put(self, event: Any) -> None:
        super().put(event)
        if (event.phase is Phase.RENDER_JOB and "submitting" in event.message
                and self.submission is not None):
            self.submission.cancel()


def test_a_cancel_after_the_checkout_submits_no_job_and_names_the_checkout(
        job_run: JobRun, fault_row: Callable[..., Any]) -> None:
    server = job_run.server
    hook = _CancelAtJobSubmit()
    options = Options({})(server.url, job_run.tmp_path, job=job_run.request())
    sub = Submission(job_run.project.blend, options, events=hook)  # type: ignore[arg-type]
    hook.submission = sub
    err = error_of(sub.run)
    assert isinstance(err, Cancelled), repr(err)
    assert server.counters.job_submissions == [] and server.jobs.jobs == []
    [checkout] = server.counters.checkouts
    assert f"checkout {checkout!r}" in str(err)
    assert (server.storage / "jobs" / checkout).is_dir()
    sent = server.counters.bytes_received
    again = job_run.submit(job_run.request())
    assert server.counters.bytes_received == sent and again.job is not None
    fault_row("cancel after the checkout, before the render job", saw=str(err),
              end_state=f"no job on the Manager; checkout {checkout} kept; submitting again "
              f"sent 0 file bytes and submitted the job",
              measured={"jobs_after_cancel": 0})


def _outcome(error: BaseException) -> Any:
    from shaman_addon.app.runner import Outcome
    return Outcome(result=None, error=error)


# -- shared storage instead of Shaman ---------------------------------------------------


def test_without_shaman_a_blend_in_shared_storage_renders_where_it_is(
        job_run: JobRun, fault_row: Callable[..., Any]) -> None:
    server = job_run.server
    request = job_run.request()
    inside = server.storage / "sprite"
    shutil.copytree(job_run.project.project, inside)
    server.faults.shaman_disabled = True
    result = job_run.submit(request, blend=inside / "shot.blend")
    doc = server.counters.job_submissions[-1]
    assert doc["settings"]["blendfile"] == str((inside / "shot.blend").resolve())
    assert doc["storage"] == {}
    assert result.shared_storage and result.job is not None and result.checkout_path is None
    assert job_run.uploads() == 0 and server.counters.requests.get("requirements", 0) == 0
    line = present.result_lines(result)[0]
    assert line.startswith("No upload was needed")
    fault_row("Shaman disabled, the .blend in shared storage", saw=line,
              end_state=f"job submitted for {doc['settings']['blendfile']}; 0 uploads, no "
              "requirements call, no checkout")


def test_without_shaman_a_blend_elsewhere_is_refused_in_words(
        job_run: JobRun, fault_row: Callable[..., Any]) -> None:
    server = job_run.server
    request = job_run.request()
    server.faults.shaman_disabled = True
    err = error_of(lambda: job_run.submit(request))
    assert isinstance(err, SharedStorageUnavailable), repr(err)
    assert str(job_run.project.blend) in str(err) and str(server.storage) in str(err)
    assert server.counters.job_checks == [] and job_run.uploads() == 0
    fault_row("Shaman disabled, the .blend outside shared storage", area="bad input",
              saw=str(err), end_state="no job checked or submitted, 0 uploads")
