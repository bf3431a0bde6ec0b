"""app.jobs: the Manager's info cached per server, and a person's choice turned into the
JobRequest a submission carries, refused in words before any upload."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from shaman_addon.app import exit_codes, present
from shaman_addon.app.jobs import (
    JobChoice,
    cached_manager_info,
    host_platform,
    manager_info,
    prepare_job,
)
from shaman_addon.app.runner import Outcome
from shaman_addon.app.settings import CLI_NAMES, Settings
from shaman_addon.errors import (
    ConfigError,
    JobNotSubmitted,
    JobRefused,
    JobSettingInvalid,
    JobTypeUnknown,
    ManagerTooOld,
    ServerUnreachable,
    WorkerTagUnknown,
)
from shaman_addon.jobs.catalog import ManagerInfo
from shaman_addon.jobs.types import JobType

RENDER = "simple-blender-render"


@pytest.fixture
def jobs_server(shaman_server_factory: Callable[..., Any]) -> Any:
    return shaman_server_factory("manager")


def _info(server: Any, cache: Path, **kw: Any) -> ManagerInfo:
    return manager_info(server.url, Settings(server_url=server.url), CLI_NAMES,
                        cache_dir=cache, **kw)


class Recorder:
    """An Evaluator that records what it was given and answers from a dict."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, job_type: JobType, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append((job_type.name, name, dict(given)))
        return {**self.values, "blendfile": "/never/sent.blend", **given}


def test_info_is_cached_per_server_and_read_without_the_network(jobs_server: Any,
                                                                tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert cached_manager_info(jobs_server.url, cache) is None
    info = _info(jobs_server, cache)
    assert info.job_type(RENDER) is not None and info.version == "3.9-beta1"
    assert cached_manager_info(jobs_server.url + "/", cache) == info  # the same server
    assert cached_manager_info("not a url", cache) is None
    calls = sum(jobs_server.counters.requests.values())
    assert _info(jobs_server, cache) == info
    assert sum(jobs_server.counters.requests.values()) == calls  # from the cache
    new_etag = jobs_server.jobs.bump_etag(RENDER)
    jobs_server.jobs.add_worker_tag("gpu-nodes")
    fresh = _info(jobs_server, cache, refresh=True)
    assert fresh.job_type(RENDER).etag == new_etag  # type: ignore[union-attr]
    assert fresh.tag_id("gpu-nodes") is not None
    assert cached_manager_info(jobs_server.url, cache) == fresh


def test_a_manager_without_the_job_api_is_refused(jobs_server: Any, tmp_path: Path) -> None:
    jobs_server.jobs.too_old = True
    with pytest.raises(ManagerTooOld) as caught:
        _info(jobs_server, tmp_path)
    assert jobs_server.url in str(caught.value) and "Flamenco 3.0 or newer" in str(caught.value)
    assert cached_manager_info(jobs_server.url, tmp_path) is None


def test_an_unreachable_manager_is_named(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"
    with pytest.raises(ServerUnreachable) as caught:
        manager_info(url, Settings(server_url=url, request_timeout=2.0), CLI_NAMES,
                     cache_dir=tmp_path)
    assert url in str(caught.value)


def _offline_info() -> ManagerInfo:
    from shaman_addon.jobs.catalog import WorkerTag
    from shaman_addon.jobs.types import JobSetting, SettingType
    render = JobType(RENDER, "Simple Blender Render", "e1", settings=(
        JobSetting("frames", SettingType.STRING, required=True),
        JobSetting("chunk_size", SettingType.INT32, default=1),
        JobSetting("blendfile", SettingType.STRING)))
    echo = JobType("echo-sleep-test", "Echo", "e2")
    return ManagerInfo(url="http://farm:8080", version="3.9", shaman_enabled=True,
                       job_types=(echo, render), worker_tags=(WorkerTag("t1", "gpu"),))


def test_no_job_type_is_a_checkout_only(tmp_path: Path) -> None:
    recorder = Recorder({})
    assert prepare_job(_offline_info(), JobChoice(""), blend=tmp_path / "a.blend",
                       evaluate=recorder) is None
    assert recorder.calls == []


def test_the_request_holds_the_evaluated_values_but_blendfile(tmp_path: Path) -> None:
    blend = tmp_path / "proj" / "sh010.blend"
    recorder = Recorder({"frames": "1-10", "chunk_size": 1})
    request = prepare_job(_offline_info(), JobChoice(
        RENDER, name="{blend_name} by {user}", priority=80, worker_tag="gpu", paused=True,
        given={"chunk_size": 5}), blend=blend, evaluate=recorder, platform="win32",
        metadata={"project": "sprite"})
    assert request is not None
    assert recorder.calls == [(RENDER, request.name, {"chunk_size": 5})]
    assert request.name.startswith("sh010 by ")
    assert dict(request.settings) == {"frames": "1-10", "chunk_size": 5}
    assert (request.priority, request.worker_tag, request.paused) == (80, "gpu", True)
    assert request.submitter_platform == "windows" and request.job_type.etag == "e1"
    assert request.metadata["project"] == "sprite"
    assert request.metadata["blendfile"] == "sh010.blend"
    assert request.metadata["submitter"].startswith("Shaman Submitter ")
    default = prepare_job(_offline_info(), JobChoice(RENDER), blend=blend,
                          evaluate=Recorder({"frames": "1"}))
    assert default is not None and default.name == "sh010"
    assert host_platform("linux") == "linux" and host_platform("darwin") == "darwin"


@pytest.mark.parametrize("choice, kind, words", [
    (JobChoice("render-everything"), JobTypeUnknown,
     "'render-everything' (its job types: 'echo-sleep-test', 'simple-blender-render')"),
    (JobChoice(RENDER, worker_tag="cpu"), WorkerTagUnknown, "'cpu' (its tags: 'gpu')"),
    (JobChoice(RENDER, priority=0), JobSettingInvalid, "from 1 to 100 (got 0)"),
    (JobChoice(RENDER, priority=101), JobSettingInvalid, "from 1 to 100 (got 101)"),
    (JobChoice(RENDER, given={"framez": "1"}), JobSettingInvalid,
     "no setting 'framez'; its settings are: frames, chunk_size"),
    (JobChoice(RENDER, given={"blendfile": "x"}), JobSettingInvalid, "cannot be set"),
    (JobChoice(RENDER, name="{shot}"), ConfigError,
     "The job name '{shot}' uses an unknown placeholder"),
])
def test_a_wrong_choice_is_refused_in_words(tmp_path: Path, choice: JobChoice,
                                           kind: type[Exception], words: str) -> None:
    recorder = Recorder({"frames": "1"})
    with pytest.raises(kind) as caught:
        prepare_job(_offline_info(), choice, blend=tmp_path / "a.blend", evaluate=recorder)
    assert words in str(caught.value)
    assert recorder.calls == []  # refused before evaluating anything


def test_present_words_a_job_not_submitted_with_its_checkout() -> None:
    error = JobNotSubmitted("The files are on the server in checkout 'a-1', but ...",
                            checkout_path="a-1")
    doc = present.outcome_json(Outcome(error=error))
    assert doc["checkout_path"] == "a-1" and doc["exit_code"] == exit_codes.EXIT_FAILED
    refused = JobRefused("refused", url="u", status=400, server_message="bad frames")
    assert exit_codes.exit_code_for(refused) == exit_codes.EXIT_FAILED


def test_job_types_in_words_and_json(jobs_server: Any, tmp_path: Path) -> None:
    info = _info(jobs_server, tmp_path)
    lines = present.job_types_lines(info)
    assert lines[0] == f"Flamenco Manager 3.9-beta1 at {jobs_server.url}: 2 job type(s)"
    assert "  simple-blender-render: Simple Blender Render" in lines
    frames = next(line for line in lines if line.startswith("    frames "))
    assert frames.startswith("    frames (string); required, automatic unless set")
    assert any(line.startswith("    add_path_components (int32, 0..32); required")
               for line in lines)
    assert not any(line.startswith("    blendfile ") for line in lines)
    assert lines[-1] == "Worker tags: none (any worker)"
    doc = present.manager_info_json(info)
    assert "format" not in doc and ManagerInfo.from_json({**doc, "format": 1}) == info
