"""ManagerInfo: read from a real Manager's recorded answers, cached per server, read
back without the network, refreshed per job type."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from recorded_manager import RecordedManager

from shaman_addon.jobs.catalog import (
    ManagerInfo,
    cache_file,
    fetch_manager_info,
    job_type_json,
    load_manager_info,
    refresh_job_type,
    save_manager_info,
)
from shaman_addon.jobs.manager import ManagerClient
from shaman_addon.jobs.types import parse_job_type
from shaman_addon.shaman.settings import ClientSettings


@pytest.fixture
def catalog_manager() -> Iterator[RecordedManager]:
    server = RecordedManager()
    yield server
    server.close()


def _fetch(server: RecordedManager) -> ManagerInfo:
    with ManagerClient(server.url, ClientSettings(max_attempts=1)) as client:
        return fetch_manager_info(client, clock=lambda: 1234.5)


def test_fetched_info_holds_version_types_with_etags_and_tags(
        catalog_manager: RecordedManager) -> None:
    info = _fetch(catalog_manager)
    assert (info.url, info.version, info.shaman_enabled, info.fetched_at) == (
        catalog_manager.url, "3.9-beta1", True, 1234.5)
    render = info.job_type("simple-blender-render")
    assert render is not None and render.etag == "6f6b4fce9301252a6ab4a9a213a2f0ad447eccd5"
    assert info.job_type("nope") is None
    assert info.tag_id("gpu-nodes") == "85604b58-9483-4ff0-a70e-a20af1de5ccc"
    assert info.tag_id("cpu") is None


def test_every_stock_job_type_survives_the_cache_unchanged(
        catalog_manager: RecordedManager, tmp_path: Path) -> None:
    info = _fetch(catalog_manager)
    for job_type in info.job_types:
        assert parse_job_type(job_type_json(job_type), url="cache") == job_type
    save_manager_info(info, tmp_path)
    assert load_manager_info(info.url, tmp_path) == info


def test_one_file_per_server_and_no_file_is_no_info(catalog_manager: RecordedManager,
                                                    tmp_path: Path) -> None:
    info = _fetch(catalog_manager)
    save_manager_info(info, tmp_path)
    other = ManagerInfo(url="http://other:8080", version="3.8", shaman_enabled=False)
    save_manager_info(other, tmp_path)
    assert cache_file(info.url, tmp_path) != cache_file(other.url, tmp_path)
    assert load_manager_info(info.url, tmp_path) == info
    assert load_manager_info(other.url, tmp_path) == other
    assert load_manager_info("http://never-seen:8080", tmp_path) is None
    # Replaced whole: no temporary file left beside the cache files.
    assert sorted(p.suffix for p in cache_file(info.url, tmp_path).parent.iterdir()) == [
        ".json", ".json"]


def test_a_damaged_cache_file_reads_as_no_info(tmp_path: Path) -> None:
    url = "http://farm:8080"
    path = cache_file(url, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"format": 1, "url": "http://farm:8080", "job_types": [', "utf-8")
    assert load_manager_info(url, tmp_path) is None
    path.write_text(json.dumps({"format": 99, "url": url}), "utf-8")
    assert load_manager_info(url, tmp_path) is None


def test_refreshing_one_job_type_updates_its_etag_in_the_cache(
        catalog_manager: RecordedManager, tmp_path: Path) -> None:
    info = _fetch(catalog_manager)
    render = info.job_type("simple-blender-render")
    assert render is not None
    stale = info.with_job_type(replace(render, etag="0" * 40))
    save_manager_info(stale, tmp_path)
    with ManagerClient(catalog_manager.url, ClientSettings(max_attempts=1)) as client:
        fresh = refresh_job_type(client, "simple-blender-render", tmp_path)
    assert fresh.etag == render.etag
    cached = load_manager_info(info.url, tmp_path)
    assert cached is not None
    assert cached.job_type("simple-blender-render") == render
    assert [t.name for t in cached.job_types] == [t.name for t in info.job_types]
