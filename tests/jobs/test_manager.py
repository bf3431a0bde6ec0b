"""ManagerClient against a real Manager 3.9's recorded answers, on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from recorded_manager import RecordedManager, recorded_body, recorded_steps

from shaman_addon.errors import (
    JobRefused,
    JobTypeStale,
    JobTypeUnknown,
    ManagerTooOld,
    NotAShamanServer,
    ServerTimeout,
    WorkerTagUnknown,
)
from shaman_addon.jobs.catalog import WorkerTag
from shaman_addon.jobs.manager import MAX_ANSWER_BYTES, ManagerClient
from shaman_addon.shaman.settings import ClientSettings

SETTINGS = ClientSettings(max_attempts=2, backoff_s=0.01)


@pytest.fixture
def recorded_manager() -> Iterator[RecordedManager]:
    server = RecordedManager()
    yield server
    server.close()


@pytest.fixture
def manager_client(recorded_manager: RecordedManager) -> Iterator[ManagerClient]:
    with ManagerClient(recorded_manager.url, SETTINGS) as client:
        yield client


def test_version_types_tags_and_storage_read_as_recorded(manager_client: ManagerClient,
                                                         recorded_manager: RecordedManager
                                                         ) -> None:
    assert manager_client.version().version == "3.9-beta1"
    types = manager_client.job_types()
    assert [t.name for t in types] == ["echo-sleep-test", "simple-blender-render"]
    one = manager_client.job_type("simple-blender-render")
    assert one == types[1] and one.etag == "6f6b4fce9301252a6ab4a9a213a2f0ad447eccd5"
    assert manager_client.worker_tags() == (
        WorkerTag("85604b58-9483-4ff0-a70e-a20af1de5ccc", "gpu-nodes", "machines with a GPU"),)
    recorded_manager.pick("GET", "/api/v3/worker-mgt/tags", "worker tags, none yet")
    assert manager_client.worker_tags() == ()
    storage = manager_client.shared_storage("windows")
    assert (storage.location, storage.shaman_enabled) == ("/srv/farm/shared/jobs", True)


def test_an_unknown_job_type_is_named(manager_client: ManagerClient) -> None:
    with pytest.raises(JobTypeUnknown) as caught:
        manager_client.job_type("no-such-type")
    assert "'no-such-type'" in str(caught.value) and "no such job type known" in str(caught.value)


@pytest.mark.parametrize("case", ["version 2", "no job API"])
def test_a_manager_without_the_job_api_is_refused_in_words(
        manager_client: ManagerClient, recorded_manager: RecordedManager, case: str) -> None:
    if case == "version 2":
        recorded_manager.answer("GET", "/api/v3/version", 200,
                                b'{"name":"Flamenco","shortversion":"2.5","version":"2.5"}')
        call = manager_client.version
    else:
        recorded_manager.answer("GET", "/api/v3/jobs/types", 404,
                                b'{"code":404,"message":"not found"}')
        call = manager_client.job_types  # type: ignore[assignment]
    with pytest.raises(ManagerTooOld) as caught:
        call()
    assert manager_client.base_url in str(caught.value)
    assert "Flamenco 3.0 or newer" in str(caught.value)


def test_checking_a_valid_job_answers_nothing(manager_client: ManagerClient,
                                              recorded_manager: RecordedManager) -> None:
    manager_client.check_job(recorded_body("check a valid job"))
    assert recorded_manager.received[-1][1] == "/api/v3/jobs/check"


@pytest.mark.parametrize("label", ["check: a movie format", "check: frames that do not parse",
                                   "check: a required setting missing (frames)"])
def test_a_refused_job_carries_the_managers_own_words(manager_client: ManagerClient,
                                                      label: str) -> None:
    with pytest.raises(JobRefused) as caught:
        manager_client.check_job(recorded_body(label))
    recorded = json.loads(recorded_steps()[label]["response"]["body"])["message"]
    assert caught.value.server_message == recorded
    assert recorded in str(caught.value) and caught.value.status == 400


def test_a_stale_etag_is_job_type_stale(manager_client: ManagerClient,
                                        recorded_manager: RecordedManager) -> None:
    with pytest.raises(JobTypeStale) as caught:
        manager_client.check_job(recorded_body("check: stale job type etag"))
    assert "'simple-blender-render'" in str(caught.value)
    assert "refresh the job type" in str(caught.value)
    # Not a failure worth repeating: one request.
    assert sum(1 for r in recorded_manager.received if r[1] == "/api/v3/jobs/check") == 1


def test_submitting_returns_the_job_and_its_page(manager_client: ManagerClient) -> None:
    job = manager_client.submit_job(recorded_body("submit the job"),
                                    checkout_path="sh010-lighting")
    assert job.id == "48a81164-4307-4081-a6ce-e6379e99d7ee"
    assert (job.status, job.name, job.type) == ("queued", "sh010 lighting",
                                                "simple-blender-render")
    assert job.url == f"{manager_client.base_url}/app/jobs/{job.id}"
    assert job.checkout_path == "sh010-lighting"
    paused = manager_client.submit_job(recorded_body("submit paused, with a worker tag"))
    assert paused.status == "paused"


def test_an_unknown_tag_id_names_the_tag(manager_client: ManagerClient) -> None:
    with pytest.raises(WorkerTagUnknown) as caught:
        manager_client.submit_job(recorded_body("submit with a worker tag that does not exist"),
                                  worker_tag_name="render-gpus")
    text = str(caught.value)
    assert "'render-gpus'" in text and "error persisting job in database" in text


def test_an_answer_over_the_cap_is_refused_not_read(manager_client: ManagerClient,
                                                    recorded_manager: RecordedManager) -> None:
    huge = b'{"job_types":[' + b" " * (MAX_ANSWER_BYTES + 10) + b"]}"
    recorded_manager.answer("GET", "/api/v3/jobs/types", 200, huge)
    with pytest.raises(NotAShamanServer) as caught:
        manager_client.job_types()
    assert f"more than {MAX_ANSWER_BYTES:,} bytes" in str(caught.value)


def test_a_dripping_answer_ends_at_the_calls_deadline(recorded_manager: RecordedManager) -> None:
    """Each byte comes well within the read timeout, so only the overall deadline (connect
    + read timeout) can end the call; without it this would take a minute."""
    recorded_manager.drip("GET", "/api/v3/jobs/types")
    settings = ClientSettings(max_attempts=1, connect_timeout=0.5, read_timeout=1.0)
    with ManagerClient(recorded_manager.url, settings) as client, \
            pytest.raises(ServerTimeout) as caught:
        client.job_types()
    assert "/api/v3/jobs/types" in str(caught.value)
