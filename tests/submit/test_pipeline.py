"""The submission pipeline against the local Shaman server, over real HTTP on loopback.

Every submission goes through the public API and collects a real .blend, as the command
line and Blender do: a template from ``blend_templates`` whose fluid cache folder
``tex/`` makes every file the test writes there a dependency, so each test still chooses
its files' number, sizes and contents. The ``lib_prod`` cases add a linked library that
the collector rewrites (the temporary-copy cases). ``test_pipeline_blend.py`` runs the
pipeline on generated every-kind productions. Timing is never asserted: ordering comes
from server counters, events, or a seam in the hashing.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shaman_addon import __version__
from shaman_addon.collect import paths as paths_mod
from shaman_addon.collect.plan import MissingFile
from shaman_addon.errors import (
    Cancelled,
    ChecksumMismatch,
    MissingDependencies,
    MissingFilesAtCheckout,
    ShamanError,
)
from shaman_addon.progress import Phase, ProgressEvent
from shaman_addon.submit import Submission, SubmitOptions, SubmitResult, Tuning
from shaman_addon.submit import checkout_name as checkout_name_mod
from shaman_addon.submit import checksums as checksums_mod
from shaman_addon.submit.checksums import ChecksumCache, FileStat

from blend_templates import Project, Templates, content
from fault_helpers import blend_paths_stay_inside, disk_state, pack_leftovers

SAFETY_S = 60.0  # only ever a guard against a hang, never a pass/fail threshold


# -- building productions ---------------------------------------------------------------


def make_prod(templates: Templates, root: Path, sizes: list[int], *, seed: int = 0,
              variant: str = "plain") -> Project:
    """A real .blend and ``tex/tex_NNNN.png`` of the given sizes (bytes unique per seed)."""
    return Project(templates, root, sizes, variant=variant, seed=str(seed), prefix="tex_",
                   digits=4)


def _key(path: Path) -> tuple[str, int]:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def options(server: Any, tmp_path: Path, **kw: Any) -> SubmitOptions:
    kw.setdefault("cache_dir", tmp_path / "cache")
    return SubmitOptions(server_url=server.url, **kw)


def drain_all(events: queue.SimpleQueue[ProgressEvent]) -> list[ProgressEvent]:
    out = []
    while not events.empty():
        out.append(events.get_nowait())
    return out


def run(
    prod: Project, opts: SubmitOptions, **kw: Any
) -> tuple[SubmitResult, list[ProgressEvent]]:
    events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    result = Submission(prod.blend, opts, events=events, **kw).run()
    return result, drain_all(events)


def history(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "cache" / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_checkout(server: Any, result: SubmitResult, prod: Project) -> None:
    """The checkout on the server's disk holds every file with the right bytes."""
    assert result.checkout_path
    folder = server.storage / "jobs" / result.checkout_path
    assert (folder / "shot.blend").read_bytes() == prod.blend.read_bytes()
    for p in prod.files:
        assert (folder / prod.checkout_path(p)).read_bytes() == p.read_bytes()


SIZES = [1 + i * 33_000 for i in range(40)]
"""40 files from 1 byte to ~1.3 MB: several upload chunks for the big ones."""


@pytest.fixture
def prod(blend_templates: Templates, tmp_path: Path) -> Project:
    return make_prod(blend_templates, tmp_path, SIZES)


@pytest.fixture
def lib_prod(blend_templates: Templates, tmp_path: Path) -> Project:
    """``prod`` with a linked library the collector rewrites: a temporary copy."""
    return make_prod(blend_templates, tmp_path, SIZES, variant="library")


class CancelRun:
    """Run a submission on a thread so the test can cancel it from another one."""

    def __init__(self, sub: Submission) -> None:
        self.sub = sub
        self.error: BaseException | None = None
        self.result: SubmitResult | None = None
        self.thread = threading.Thread(target=self._go, daemon=True)
        self.thread.start()

    def _go(self) -> None:
        try:
            self.result = self.sub.run()
        except BaseException as exc:
            self.error = exc

    def join(self) -> None:
        self.thread.join(SAFETY_S)
        assert not self.thread.is_alive(), "the submission did not stop"


def wait_for(condition: Callable[[], bool]) -> None:
    done = threading.Event()
    for _ in range(int(SAFETY_S / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition never came true")


# -- the main paths ---------------------------------------------------------------------


@pytest.mark.local_server_only
def test_cold_submission(any_style_server: Any, prod: Project, tmp_path: Path) -> None:
    server = any_style_server
    result, events = run(prod, options(server, tmp_path, app_info={"blender": "4.2.3"}))
    assert result.files_total == 41
    assert result.bytes_total == prod.total_bytes
    assert result.files_uploaded == 41 and result.bytes_uploaded == prod.total_bytes
    assert result.files_already_stored == 0 and result.bytes_already_stored == 0
    assert result.worker_blend_path == f"{{jobs}}/{result.checkout_path}/shot.blend"
    assert result.blend_checkout_path == "shot.blend"
    assert result.checkout_path.startswith("shot-")
    assert not result.dry_run and result.missing == []
    assert_checkout(server, result, prod)
    for key in prod.content_keys():
        assert server.is_stored(*key)
    counters = server.counters
    assert counters.bytes_received == prod.total_bytes  # each byte once
    assert counters.checkouts == [result.checkout_path]
    # The last requirements call listed the whole plan (and came back empty).
    assert counters.requirements_files[-1] == 41
    # Events: phases in order, bytes never past totals, the last one final.
    phases = [e.phase for e in events]
    assert phases[0] is Phase.COLLECTING and phases[-1] is Phase.DONE
    assert phases.index(Phase.HASHING) < phases.index(Phase.CHECKING_OUT)
    assert all(e.upload_bytes_done <= e.upload_bytes_total for e in events)
    assert all(e.hash_bytes_done <= e.hash_bytes_total for e in events)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0  # the bar never goes back
    assert set(result.phase_seconds) >= {"collecting", "hashing", "uploading", "checking out"}
    (record,) = history(tmp_path)
    assert record["status"] == "done"
    assert record["tool_version"] == __version__
    assert record["app"] == {"blender": "4.2.3"}
    assert record["server"] == server.url
    assert record["checkout_path"] == result.checkout_path
    assert record["files_uploaded"] == 41 and record["cache_hits"] == 0
    assert "hashing" in record["phase_seconds"]


@pytest.mark.local_server_only
def test_unchanged_resubmission_is_one_requirements_call(
    any_style_server: Any, prod: Project, tmp_path: Path
) -> None:
    server = any_style_server
    first, _ = run(prod, options(server, tmp_path))
    server.counters.reset()
    second, events = run(prod, options(server, tmp_path))
    counters = server.counters
    # (a spec-style server answers 409 to a name taken in the same second: a 2nd create)
    assert set(counters.requests) == {"requirements", "create"}
    assert counters.requests["requirements"] == 1
    assert counters.requirements_files == [41]
    assert counters.bytes_received == 0
    assert second.files_uploaded == 0 and second.bytes_uploaded == 0
    assert second.files_already_stored == 41
    assert second.checkout_path != first.checkout_path  # a new, unique checkout
    assert_checkout(server, second, prod)
    assert history(tmp_path)[-1]["cache_hits"] == 41  # every checksum from the cache
    assert [e.phase for e in events if e.phase is Phase.UPLOADING] == []


@pytest.mark.local_server_only
def test_one_changed_texture_sends_exactly_its_bytes(
    any_style_server: Any, prod: Project, tmp_path: Path
) -> None:
    server = any_style_server
    run(prod, options(server, tmp_path))
    changed = prod.files[7]
    size = changed.stat().st_size
    changed.write_bytes(content("99-7", size))  # same size, new content, new mtime
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    server.counters.reset()
    result, _ = run(prod, options(server, tmp_path))
    new_key = _key(changed)
    assert server.counters.bytes_received_by_file == {new_key: size}
    assert result.files_uploaded == 1 and result.bytes_uploaded == size
    assert result.files_already_stored == 40
    assert history(tmp_path)[-1]["cache_hits"] == 40
    assert_checkout(server, result, prod)


@pytest.mark.local_server_only
def test_uploads_start_before_the_last_file_is_hashed(
    shaman_server: Any, prod: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last texture's hashing is held until the server has stored another file."""
    server = shaman_server
    last = prod.files[-1]
    real_hash = checksums_mod.sha256_file
    order: list[str] = []

    def gated(path: Path, **kw: Any) -> tuple[str, int]:
        if Path(path) == last:
            wait_for(lambda: sum(
                n for (ep, status), n in server.counters.statuses.items()
                if ep == "upload" and status in (200, 204)
            ) > 0)
            order.append("last hash starts after an upload was stored")
        return real_hash(path, **kw)

    monkeypatch.setattr(checksums_mod, "sha256_file", gated)
    result, events = run(prod, options(server, tmp_path, jobs=2,  # overlap even this small set
                                       tuning=Tuning(hash_first_bytes=0)))
    assert order == ["last hash starts after an upload was stored"]
    # The bar never went back, although upload work arrived batch by batch.
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions)
    assert result.files_uploaded == 41
    assert_checkout(server, result, prod)


@pytest.mark.local_server_only
def test_dry_run_creates_nothing(any_style_server: Any, prod: Project, tmp_path: Path) -> None:
    server = any_style_server
    result, events = run(prod, options(server, tmp_path, dry_run=True))
    counters = server.counters
    assert "upload" not in counters.requests and "create" not in counters.requests
    assert counters.requests == {"requirements": 1}
    assert counters.bytes_received == 0
    assert list((server.storage / "jobs").iterdir()) == []
    assert result.dry_run and result.checkout_path is None and result.worker_blend_path is None
    assert result.files_uploaded == 41 and result.bytes_uploaded == prod.total_bytes
    assert len(result.to_upload) == 41 and "shot.blend" in result.to_upload
    assert events[-1].phase is Phase.DONE
    # After a real run, a dry run would upload nothing.
    run(prod, options(server, tmp_path))
    again, _ = run(prod, options(server, tmp_path, dry_run=True))
    assert again.files_uploaded == 0 and again.files_already_stored == 41


@pytest.mark.local_server_only
def test_duplicate_content_is_sent_once(shaman_server: Any, prod: Project,
                                        tmp_path: Path) -> None:
    twin = prod.add("twin.png", prod.files[20].read_bytes())
    result, _ = run(prod, options(shaman_server, tmp_path))
    assert shaman_server.counters.bytes_received == prod.total_bytes
    assert result.files_total == 42 and result.files_uploaded == 41
    folder = shaman_server.storage / "jobs" / result.checkout_path
    assert (folder / "tex" / "twin.png").read_bytes() == twin.read_bytes()


def test_temp_copies_are_removed_and_sent(shaman_server: Any, lib_prod: Project,
                                          tmp_path: Path, private_tmp: Path) -> None:
    """The library is sent as a rewritten copy: with a cache folder the copy is kept
    there (``rewritten/``); without one it is a temporary file. Either way no
    ``shaman-pack-*`` folder is left and the checkout holds the same rewritten bytes,
    whose paths all lead inside the checkout."""
    result, _ = run(lib_prod, options(shaman_server, tmp_path))
    assert pack_leftovers(private_tmp) == []
    copy = lib_prod.rewritten_library(tmp_path / "cache").read_bytes()
    assert copy != lib_prod.library.read_bytes()  # really rewritten
    folder = shaman_server.storage / "jobs" / result.checkout_path
    assert (folder / "libs" / "lib.blend").read_bytes() == copy
    assert blend_paths_stay_inside(shaman_server.storage, result.checkout_path) > 0
    again, _ = run(lib_prod, options(shaman_server, tmp_path, cache_dir=None,
                                     checkout_template="no cache"))
    assert pack_leftovers(private_tmp) == []
    folder = shaman_server.storage / "jobs" / again.checkout_path
    assert (folder / "libs" / "lib.blend").read_bytes() == copy  # deterministic bytes


# -- missing dependencies -----------------------------------------------------------------


def test_missing_dependencies_are_listed(shaman_server: Any, blend_templates: Templates,
                                         tmp_path: Path) -> None:
    prod = make_prod(blend_templates, tmp_path, SIZES, variant="missing")
    assert prod.missing is not None
    gone = MissingFile(str(prod.missing), (f"{prod.blend}: IM gone.png",))
    result, _ = run(prod, options(shaman_server, tmp_path))
    assert result.missing == [gone]
    assert result.checkout_path


@pytest.mark.local_server_only
def test_fail_on_missing_stops_before_any_upload(shaman_server: Any, blend_templates: Templates,
                                                 tmp_path: Path, private_tmp: Path) -> None:
    prod = make_prod(blend_templates, tmp_path, SIZES, variant="both")  # + a temporary copy
    events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    sub = Submission(prod.blend, options(shaman_server, tmp_path, fail_on_missing=True),
                     events=events)
    with pytest.raises(MissingDependencies, match=r"gone\.png"):
        sub.run()
    assert shaman_server.counters.requests == {}
    assert pack_leftovers(private_tmp) == []
    assert drain_all(events)[-1].phase is Phase.FAILED
    assert history(tmp_path)[-1]["status"] == "failed"


# -- what the server can throw at us --------------------------------------------------------


@pytest.mark.local_server_only
def test_deferred_uploads_go_to_the_back_and_finish(
    shaman_server: Any, prod: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone else is "uploading" one file for two requirements calls: 425s, a wait
    round, then this client sends it."""
    server = shaman_server
    quick = Tuning(defer_delays_s=(0.01, 0.01, 0.01))
    run(prod, options(server, tmp_path, dry_run=True))  # warm cache: ONE first call
    busy = _key(prod.files[3])
    server.faults.report_uploading(*busy, calls=2)
    server.counters.reset()
    result, _ = run(prod, options(server, tmp_path, tuning=quick))
    # 425 for each back-off step, then left for the next round, then stored.
    assert server.counters.statuses.get(("upload", 425), 0) == 4
    # The whole list (all 41 needed), the 41 it named once they were sent, then only
    # the one the second answer named.
    assert server.counters.requirements_files == [41, 41, 1]
    assert server.is_stored(*busy)
    assert_checkout(server, result, prod)
    assert server.counters.bytes_received == prod.total_bytes


@pytest.mark.local_server_only
def test_reset_mid_upload_then_status_check(shaman_server: Any, prod: Project,
                                            tmp_path: Path) -> None:
    server = shaman_server
    server.faults.drop_upload_after(200_000, count=2)
    result, _ = run(prod, options(server, tmp_path))
    assert server.counters.requests.get("file_status", 0) >= 2
    assert_checkout(server, result, prod)
    for key in prod.content_keys():
        assert server.is_stored(*key)


@pytest.mark.local_server_only
def test_early_208_is_checked_not_trusted(shaman_server: Any, prod: Project,
                                          tmp_path: Path) -> None:
    server = shaman_server
    server.faults.early_208_and_drop(count=3)
    result, _ = run(prod, options(server, tmp_path))
    assert server.counters.statuses.get(("upload", 208), 0) == 3
    assert server.counters.requests.get("file_status", 0) >= 3
    assert_checkout(server, result, prod)  # the 208'd files were sent after all


@pytest.mark.local_server_only
def test_417_rehashes_once_and_corrects_the_cache(shaman_server: Any, prod: Project,
                                                  tmp_path: Path) -> None:
    server = shaman_server
    victim = prod.files[5]
    # A stale cache entry: right path, size and mtime, wrong checksum.
    with ChecksumCache(tmp_path / "cache" / "checksums.sqlite") as cache:
        cache.put(FileStat.of(victim), "0" * 64)
    result, _ = run(prod, options(server, tmp_path))
    assert server.counters.statuses.get(("upload", 417), 0) == 1
    assert server.is_stored(*_key(victim))
    assert_checkout(server, result, prod)
    server.counters.reset()
    again, _ = run(prod, options(server, tmp_path))
    assert server.counters.bytes_received == 0 and again.files_uploaded == 0
    assert history(tmp_path)[-1]["cache_hits"] == 41


@pytest.mark.local_server_only
def test_417_twice_fails_naming_the_file(shaman_server: Any, blend_templates: Templates,
                                          tmp_path: Path) -> None:
    prod = make_prod(blend_templates, tmp_path, [50_000])
    server = shaman_server
    server.faults.fail_next("upload", count=10, status=417,
                            message="file SHA256 mismatched, declared x but received y")
    with pytest.raises(ChecksumMismatch) as info:
        run(prod, options(server, tmp_path, jobs=1))
    assert str(prod.files[0]) in str(info.value) or str(prod.blend) in str(info.value)
    assert "mismatched" in str(info.value)
    assert server.counters.checkouts == []


@pytest.mark.local_server_only
def test_checkout_name_collision_gets_a_new_unique_path(
    any_style_server: Any, prod: Project, tmp_path: Path
) -> None:
    server = any_style_server
    first, _ = run(prod, options(server, tmp_path, checkout_template="fixed/name"))
    second, _ = run(prod, options(server, tmp_path, checkout_template="fixed/name"))
    assert first.checkout_path == "fixed/name"
    assert second.checkout_path != "fixed/name"
    assert second.checkout_path.startswith("fixed/name-")
    assert second.worker_blend_path == f"{{jobs}}/{second.checkout_path}/shot.blend"
    assert_checkout(server, second, prod)
    assert sorted(server.counters.checkouts) == sorted([first.checkout_path,
                                                        second.checkout_path])


@pytest.mark.local_server_only
def test_missing_files_at_checkout_are_sent_again(
    any_style_server: Any, prod: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob vanishes between the last requirements call and create (both styles)."""
    server = any_style_server
    victim = _key(prod.files[2])
    real_render = checkout_name_mod.render_checkout_name
    removed: list[bool] = []

    def render_then_lose_a_blob(*args: Any, **kw: Any) -> str:
        if not removed:
            server.stored_path(*victim).unlink()
            removed.append(True)
        return real_render(*args, **kw)

    monkeypatch.setattr(checkout_name_mod, "render_checkout_name", render_then_lose_a_blob)
    result, _ = run(prod, options(server, tmp_path))
    status = 424 if server.style == "spec" else 500
    assert server.counters.statuses.get(("create", status)) == 1
    assert server.counters.bytes_received_by_file[victim] == 2 * victim[1]
    assert_checkout(server, result, prod)


@pytest.mark.local_server_only
def test_missing_files_twice_at_checkout_is_a_clear_failure(
    shaman_server: Any, prod: Project, tmp_path: Path
) -> None:
    server = shaman_server
    server.faults.fail_next("create", count=2, status=500,
                            message="unexpected error: unknown files requested in checkout")
    with pytest.raises(MissingFilesAtCheckout, match="unknown files"):
        run(prod, options(server, tmp_path))
    assert server.counters.checkouts == []


# -- cancel ---------------------------------------------------------------------------------


def _cancel_fixture(prod: Project, server: Any, tmp_path: Path, **kw: Any
                    ) -> tuple[Submission, queue.SimpleQueue[ProgressEvent]]:
    """A submission of a production with a library (so a temporary copy is made)."""
    assert prod.library is not None
    events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    sub = Submission(prod.blend, options(server, tmp_path, **kw), events=events)
    return sub, events


def _assert_cancelled_cleanly(runner: CancelRun, private_tmp: Path, server: Any,
                              events: queue.SimpleQueue[ProgressEvent]) -> None:
    runner.join()
    assert isinstance(runner.error, Cancelled), runner.error
    assert server.counters.checkouts == []
    assert list((server.storage / "jobs").iterdir()) == []
    assert pack_leftovers(private_tmp) == []  # no temporary rewritten copy left
    assert drain_all(events)[-1].phase is Phase.CANCELLED


def _next_run_completes_and_skips(prod: Project, server: Any, tmp_path: Path) -> None:
    stored_before = disk_state(server.storage).stored  # only this test's contents
    server.faults.reset()
    server.counters.reset()
    result, _ = run(prod, options(server, tmp_path))
    assert_checkout(server, result, prod)
    sent = set(server.counters.bytes_received_by_file)
    assert not (sent & stored_before)
    assert sent == prod.content_keys(tmp_path / "cache") - stored_before


@pytest.mark.local_server_only
def test_cancel_part_way_through_an_upload(shaman_server: Any, blend_templates: Templates,
                                           tmp_path: Path, private_tmp: Path) -> None:
    """One upload hangs on the server, others finish; cancel from this thread."""
    prod = make_prod(blend_templates, tmp_path, [3_000_000] + [100_000] * 12,
                     variant="library")
    server = shaman_server
    server.faults.hang_next("upload", 1)
    sub, events = _cancel_fixture(prod, server, tmp_path, jobs=2)
    runner = CancelRun(sub)
    wait_for(lambda: sum(
        n for (ep, st), n in server.counters.statuses.items() if ep == "upload"
    ) >= 3)
    sub.cancel()
    _assert_cancelled_cleanly(runner, private_tmp, server, events)
    assert any(server.is_stored(*k) for k in prod.content_keys(tmp_path / "cache"))
    _next_run_completes_and_skips(prod, server, tmp_path)


@pytest.mark.local_server_only
def test_cancel_while_asking_requirements(shaman_server: Any, lib_prod: Project,
                                          tmp_path: Path, private_tmp: Path) -> None:
    server = shaman_server
    server.faults.hang_next("requirements", 1)
    sub, events = _cancel_fixture(lib_prod, server, tmp_path)
    runner = CancelRun(sub)
    wait_for(lambda: server.counters.requests.get("requirements", 0) >= 1)
    sub.cancel()
    _assert_cancelled_cleanly(runner, private_tmp, server, events)
    _next_run_completes_and_skips(lib_prod, server, tmp_path)


@pytest.mark.local_server_only
def test_cancel_while_hashing(shaman_server: Any, blend_templates: Templates, tmp_path: Path,
                              private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prod = make_prod(blend_templates, tmp_path, [4_000_000] * 3, variant="library")
    server = shaman_server
    sub, events = _cancel_fixture(prod, server, tmp_path)
    real_hash = checksums_mod.sha256_file

    def hash_and_cancel(path: Path, **kw: Any) -> tuple[str, int]:
        on_bytes = kw.pop("on_bytes")

        def first_chunk_cancels(n: int) -> None:
            on_bytes(n)
            threading.Thread(target=sub.cancel).start()
            sub.cancel_event.wait(SAFETY_S)

        return real_hash(path, on_bytes=first_chunk_cancels, **kw)

    monkeypatch.setattr(checksums_mod, "sha256_file", hash_and_cancel)
    runner = CancelRun(sub)
    _assert_cancelled_cleanly(runner, private_tmp, server, events)
    assert server.counters.bytes_received == 0
    monkeypatch.setattr(checksums_mod, "sha256_file", real_hash)
    _next_run_completes_and_skips(prod, server, tmp_path)


@pytest.mark.local_server_only
def test_cancel_before_collecting(shaman_server: Any, lib_prod: Project, tmp_path: Path,
                                  private_tmp: Path) -> None:
    sub, events = _cancel_fixture(lib_prod, shaman_server, tmp_path)
    sub.cancel()
    runner = CancelRun(sub)
    _assert_cancelled_cleanly(runner, private_tmp, shaman_server, events)
    assert shaman_server.counters.requests == {}
    assert history(tmp_path)[-1]["status"] == "cancelled"


@pytest.mark.local_server_only
def test_cancel_just_before_the_checkout(shaman_server: Any, lib_prod: Project, tmp_path: Path,
                                         private_tmp: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    server = shaman_server
    sub, events = _cancel_fixture(lib_prod, server, tmp_path)
    real_render = checkout_name_mod.render_checkout_name

    def render_and_cancel(*args: Any, **kw: Any) -> str:
        sub.cancel()
        return real_render(*args, **kw)

    monkeypatch.setattr(checkout_name_mod, "render_checkout_name", render_and_cancel)
    runner = CancelRun(sub)
    _assert_cancelled_cleanly(runner, private_tmp, server, events)
    assert "create" not in server.counters.requests
    monkeypatch.setattr(checkout_name_mod, "render_checkout_name", real_render)
    server.counters.reset()
    result, _ = run(lib_prod, options(server, tmp_path))
    assert server.counters.bytes_received == 0 and result.files_uploaded == 0


@pytest.mark.local_server_only
def test_cancel_after_create_was_sent_does_not_cut_it_off(
    shaman_server: Any, lib_prod: Project, tmp_path: Path, private_tmp: Path
) -> None:
    """Once the create call is out, cancel leaves it alone: its answer is reported."""
    server = shaman_server
    server.faults.delay("create", 0.3)
    sub, _events = _cancel_fixture(lib_prod, server, tmp_path)
    runner = CancelRun(sub)
    wait_for(lambda: server.counters.requests.get("create", 0) >= 1)
    sub.cancel()
    runner.join()
    assert runner.error is None
    assert runner.result is not None and runner.result.checkout_path
    assert server.counters.checkouts == [runner.result.checkout_path]
    assert pack_leftovers(private_tmp) == []


# -- the checksum cache under another process's lock -------------------------------------


@pytest.mark.local_server_only
def test_locked_cache_means_no_cache_this_run(shaman_server: Any, prod: Project,
                                              tmp_path: Path) -> None:
    server = shaman_server
    run(prod, options(server, tmp_path))
    db = tmp_path / "cache" / "checksums.sqlite"
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        server.counters.reset()
        result, _ = run(prod, options(server, tmp_path))
    finally:
        other.rollback()
        other.close()
    assert history(tmp_path)[-1]["cache_hits"] == 0
    assert any("checksum cache" in w for w in result.warnings)
    assert server.counters.bytes_received == 0
    server.counters.reset()
    run(prod, options(server, tmp_path))
    assert history(tmp_path)[-1]["cache_hits"] == 41  # not wiped


def test_no_cache_dir_means_no_cache_and_no_history(shaman_server: Any, prod: Project,
                                                    tmp_path: Path) -> None:
    result, _ = run(prod, options(shaman_server, tmp_path, cache_dir=None))
    assert result.files_uploaded == 41
    assert not (tmp_path / "cache").exists()


@pytest.mark.local_server_only
def test_bad_checkout_path_in_plan_is_refused_before_sending(
    shaman_server: Any, prod: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in collecting, made on purpose: ``paths.to_checkout_path`` (the one place
    checkout paths are made) is patched to give ONE file an escaping path. The submission
    must refuse the plan before anything is sent."""
    victim = str(prod.files[0])
    real = paths_mod.to_checkout_path

    def escapes_for_one_file(abs_path: Any, project_root: Any) -> str:
        return "../escape.png" if str(abs_path) == victim else real(abs_path, project_root)

    monkeypatch.setattr(paths_mod, "to_checkout_path", escapes_for_one_file)
    with pytest.raises(ShamanError, match="not a safe"):
        run(prod, options(shaman_server, tmp_path))
    assert shaman_server.counters.requests == {}


@pytest.mark.local_server_only
def test_a_stuck_other_uploader_is_taken_over(
    shaman_server: Any, prod: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server says "uploading" for one file at every requirements call: after some
    wait rounds this client sends it without the defer header and finishes."""
    server = shaman_server
    quick = Tuning(defer_delays_s=(0.001,), max_wait_rounds=4)
    stuck = _key(prod.files[9])
    server.faults.report_uploading(*stuck, calls=1000)
    result, _ = run(prod, options(server, tmp_path, tuning=quick))
    assert server.is_stored(*stuck)
    assert server.counters.bytes_received_by_file[stuck] == stuck[1]
    assert_checkout(server, result, prod)


@pytest.mark.local_server_only
def test_a_server_that_keeps_losing_a_file_fails_naming_it(
    shaman_server: Any, prod: Project, tmp_path: Path
) -> None:
    """Uploads of one file "succeed" but it never shows up as stored (a server losing
    it): bounded rounds, then an error that names the file; no checkout."""
    lost = _key(prod.files[4])
    shaman_server.faults.lose_uploads(*lost)  # answered 200 every time, never stored
    with pytest.raises(ShamanError, match=r"still lacks 1 file\(s\).*tex_0004\.png"):
        run(prod, options(shaman_server, tmp_path))
    assert shaman_server.counters.checkouts == []
    # max_rounds upload rounds, each followed by a requirements call over the whole list,
    # after the first call; one call more when the first files were asked about while
    # collecting still ran (a slow machine: then the whole list is asked once again).
    calls = len(shaman_server.counters.requirements_files)
    assert Tuning().max_rounds + 1 <= calls <= Tuning().max_rounds + 2
    assert not shaman_server.is_stored(*lost)
    assert shaman_server.counters.bytes_received_by_file[lost] >= lost[1]  # it was sent


@pytest.mark.local_server_only
def test_a_failed_upload_stops_the_submission_while_still_hashing(
    shaman_server: Any, blend_templates: Templates, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload refused for good (400) while files are still being hashed: the
    hashing stops, the error is the server's, and no checkout is made."""
    prod = make_prod(blend_templates, tmp_path, [30_000] * 30)
    server = shaman_server
    server.faults.fail_next("upload", count=1000, status=400, message="injected refusal")
    real_hash = checksums_mod.sha256_file
    hashed: list[Path] = []
    stopped: list[bool] = []

    def hash_after_the_refusal(path: Path, **kw: Any) -> tuple[str, int]:
        if hashed:  # from the 2nd file on, only once the server has refused an upload
            wait_for(lambda: server.counters.statuses.get(("upload", 400), 0) >= 1)
        if len(hashed) >= 2:  # the rest wait for the pipeline to call the hashing off
            stopped.append(kw["cancel"].wait(SAFETY_S))
        hashed.append(Path(path))
        return real_hash(path, **kw)

    monkeypatch.setattr(checksums_mod, "sha256_file", hash_after_the_refusal)
    with pytest.raises(ShamanError, match="injected refusal"):
        run(prod, options(server, tmp_path, jobs=1, tuning=Tuning(hash_first_bytes=0)))
    assert server.counters.checkouts == []
    assert stopped and all(stopped)  # hashing was stopped, not left to run to the end
