"""The pipeline on real productions made by real Blender (``tests/blendgen.py``).

Collecting is real here (BAT traces the .blend files, libraries are rewritten into
temporary copies), so these tests check what the artist cares about: the checkout holds
every file the plan names with the right bytes, a resubmission costs one requirements
call and no upload, and one changed texture costs exactly its own bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

import shaman_addon.collect.collector as collect_mod
from shaman_addon.collect.collector import collect
from shaman_addon.errors import Cancelled, MissingDependencies
from shaman_addon.progress import Phase, ProgressEvent
from shaman_addon.submit import Submission, SubmitOptions, SubmitResult, Tuning

import blendgen

# Every test gets a temp folder of its own (``private_tmp``): other processes on the
# machine use /tmp too, and the tests look for temporary copies left in it.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_tmp")]



OVERLAP = Tuning(hash_first_bytes=0)
"""Ask and upload while still hashing, even on these small productions."""


def _submit(info: blendgen.ProductionInfo, server: Any, cache: Path,
            **kw: Any) -> tuple[SubmitResult, list[ProgressEvent]]:
    events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    opts = SubmitOptions(server_url=server.url, cache_dir=cache, **kw)
    result = Submission(info.main_blend, opts, events=events).run()
    out = []
    while not events.empty():
        out.append(events.get_nowait())
    return result, out


def _history(cache: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (cache / "history.jsonl").read_text().splitlines()]


def _key(path: Path) -> tuple[str, int]:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def _assert_checkout_matches_plan(server: Any, result: SubmitResult,
                                  info: blendgen.ProductionInfo) -> int:
    """Every planned file is in the checkout with its bytes; returns how many rewritten."""
    plan = collect(info.main_blend)
    try:
        folder = server.storage / "jobs" / result.checkout_path
        assert result.files_total == len(plan.files)
        for f in plan.files:
            assert (folder / f.checkout_path).read_bytes() == f.source.read_bytes(), f
        assert (folder / result.blend_checkout_path).is_file()
        return sum(1 for f in plan.files if f.rewritten)
    finally:
        plan.cleanup()


def _pack_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("shaman-pack-*"))


@pytest.mark.local_server_only
def test_cold_then_unchanged_resubmission(any_style_server: Any,
                                          every_kind_3mb_production: blendgen.ProductionInfo,
                                          tmp_path: Path) -> None:
    server = any_style_server
    cache = tmp_path / "cache"
    first, events = _submit(every_kind_3mb_production, server, cache)
    assert _pack_dirs() == set()  # the rewritten temporary copies are gone
    assert first.files_uploaded > 50 and first.missing == []
    assert first.worker_blend_path == f"{{jobs}}/{first.checkout_path}/shots/main.blend"
    rewritten = _assert_checkout_matches_plan(server, first, every_kind_3mb_production)
    assert rewritten > 0  # so the temp-folder check above meant something
    assert [e.phase for e in events][-1] is Phase.DONE
    assert Phase.COLLECTING in {e.phase for e in events}

    server.counters.reset()
    second, _ = _submit(every_kind_3mb_production, server, cache)
    counters = server.counters
    assert counters.requests["requirements"] == 1
    assert counters.requirements_files == [second.files_total]
    assert "upload" not in counters.requests and counters.bytes_received == 0
    assert second.files_uploaded == 0 and second.files_already_stored == second.files_total
    # Every checksum from the cache, the rewritten .blend copies' too (sent from the
    # rewrite cache, the same file as last time).
    assert _history(cache)[-1]["cache_hits"] == second.files_total
    _assert_checkout_matches_plan(server, second, every_kind_3mb_production)


@pytest.mark.local_server_only
def test_one_changed_texture_costs_its_bytes(shaman_server: Any, tmp_path: Path) -> None:
    info = blendgen.generate(tmp_path / "prod", libraries=1, files=10, total_bytes=500_000,
                             kinds="basic")
    cache = tmp_path / "cache"
    _submit(info, shaman_server, cache)
    texture = info.kinds["library texture"][0]
    data = bytearray(texture.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes (past the PNG's pixels: Blender won't care)
    texture.write_bytes(bytes(data))
    st = texture.stat()
    os.utime(texture, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    shaman_server.counters.reset()
    result, _ = _submit(info, shaman_server, cache)
    assert shaman_server.counters.bytes_received_by_file == {_key(texture): len(data)}
    assert result.files_uploaded == 1
    _assert_checkout_matches_plan(shaman_server, result, info)


@pytest.mark.local_server_only
def test_missing_texture_is_listed_or_stops(shaman_server: Any, tmp_path: Path) -> None:
    info = blendgen.generate(tmp_path / "prod", libraries=1, files=0, kinds="basic")
    gone = info.kinds["library texture"][0]
    gone.unlink()
    result, _ = _submit(info, shaman_server, tmp_path / "cache")
    assert any(Path(m.path).name == gone.name for m in result.missing)
    shaman_server.counters.reset()
    with pytest.raises(MissingDependencies, match=gone.name):
        _submit(info, shaman_server, tmp_path / "cache", fail_on_missing=True,
                tuning=OVERLAP)  # overlap even on small data
    assert "upload" not in shaman_server.counters.requests


@pytest.mark.local_server_only
def test_cancel_while_collecting(shaman_server: Any,
                                 every_kind_3mb_production: blendgen.ProductionInfo,
                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancel from another thread as soon as collect reports its first step."""
    real_collect = collect_mod.collect
    opts = SubmitOptions(server_url=shaman_server.url, cache_dir=tmp_path / "cache")
    sub = Submission(every_kind_3mb_production.main_blend, opts)

    def collect_and_cancel(*args: Any, **kw: Any) -> Any:
        report = kw["on_progress"]

        def on_progress(text: str) -> None:
            report(text)
            canceller = threading.Thread(target=sub.cancel)
            canceller.start()
            canceller.join()

        kw["on_progress"] = on_progress
        return real_collect(*args, **kw)

    monkeypatch.setattr(collect_mod, "collect", collect_and_cancel)
    with pytest.raises(Cancelled):
        sub.run()
    assert shaman_server.counters.requests == {}
    assert _pack_dirs() == set()
    monkeypatch.setattr(collect_mod, "collect", real_collect)
    result, _ = _submit(every_kind_3mb_production, shaman_server, tmp_path / "cache")
    assert result.checkout_path and result.files_uploaded == result.files_total


def _hold_libraries_until(monkeypatch: pytest.MonkeyPatch, production: blendgen.ProductionInfo,
                          ready: Any, then: Any = None) -> list[bool]:
    """Make the collector wait, before it reads each library, until ``ready()`` holds (then
    run ``then``); returns one flag per wait: True if it held."""
    real_trace = collect_mod._Collector.trace
    held: list[bool] = []

    def trace(self: Any, path: Path) -> Any:
        if path != production.main_blend and not held:
            done = threading.Event()
            for _ in range(600):
                if ready():
                    done.set()
                    break
                done.wait(0.05)
            held.append(done.is_set())
            if then is not None:
                then()
        return real_trace(self, path)

    monkeypatch.setattr(collect_mod._Collector, "trace", trace)
    return held


@pytest.mark.local_server_only
def test_uploads_start_while_the_libraries_are_still_read(
        shaman_server: Any, every_kind_3mb_production: blendgen.ProductionInfo, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The main file's own dependencies are hashed, asked about and sent before the
    collector reads the first library. Every file is asked about once, in batches; with
    every asked-for content stored by our own uploads, no whole-list call repeats that
    before the checkout (which checks again itself); every file is in place."""
    server = shaman_server
    held = _hold_libraries_until(
        monkeypatch, every_kind_3mb_production,
        lambda: server.counters.requests.get("upload", 0) > 0)
    result, events = _submit(every_kind_3mb_production, server, tmp_path / "cache", tuning=OVERLAP)
    assert held == [True]  # an upload was stored while the collector waited
    counters = server.counters
    assert counters.requests["requirements"] >= 2
    assert sum(counters.requirements_files) == result.files_total  # each file asked once
    assert result.files_uploaded == result.files_total and result.missing == []
    _assert_checkout_matches_plan(server, result, every_kind_3mb_production)
    assert _pack_dirs() == set()
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions)  # totals grew while collecting: never backwards
    assert [e.phase for e in events][-1] is Phase.DONE


@pytest.mark.local_server_only
def test_cancel_while_uploading_and_still_collecting(
        shaman_server: Any, every_kind_3mb_production: blendgen.ProductionInfo, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = shaman_server
    opts = SubmitOptions(server_url=server.url, cache_dir=tmp_path / "cache", tuning=OVERLAP)
    sub = Submission(every_kind_3mb_production.main_blend, opts)
    held = _hold_libraries_until(
        monkeypatch, every_kind_3mb_production,
        lambda: server.counters.requests.get("upload", 0) > 0,
        then=sub.cancel)
    with pytest.raises(Cancelled):
        sub.run()
    assert held == [True]
    assert "create" not in server.counters.requests
    assert list((server.storage / "jobs").glob("*")) == []
    assert _pack_dirs() == set()


@pytest.mark.local_server_only
def test_fail_on_missing_sends_nothing_even_when_overlapping(
        shaman_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = blendgen.generate(tmp_path / "prod", libraries=1, files=20, total_bytes=400_000,
                             kinds="basic")
    gone = info.kinds["library texture"][0]
    gone.unlink()
    with pytest.raises(MissingDependencies, match=gone.name):
        _submit(info, shaman_server, tmp_path / "cache", fail_on_missing=True,
                tuning=OVERLAP)  # overlap even on small data
    assert "upload" not in shaman_server.counters.requests
    assert "requirements" not in shaman_server.counters.requests
    assert _pack_dirs() == set()
