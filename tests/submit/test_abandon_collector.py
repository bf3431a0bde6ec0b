"""Cancel while the collector is stuck inside a .blend read (issue 13, item 1): BAT's
loops cannot be interrupted from outside, so ``Submission.cancel()`` must not wait for
the collector. It is abandoned (a daemon thread); should it ever finish, it removes the
temporary copies of the plan it made itself."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import shaman_addon.collect.collector as collect_mod
from shaman_addon.errors import Cancelled
from shaman_addon.submit import Submission, SubmitOptions

from blend_templates import Project, Templates

GUARD_S = 60.0  # only a guard against a hang (before the fix, run() never returned)

pytestmark = pytest.mark.usefixtures("private_tmp")


@pytest.mark.local_server_only
def test_cancel_returns_while_the_collector_is_stuck(
        shaman_server: Any, blend_templates: Templates, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project(blend_templates, tmp_path / "p", [1000], variant="library")
    real_collect = collect_mod.collect
    entered, release, finished = threading.Event(), threading.Event(), threading.Event()
    made: list[Any] = []

    def stuck_collect(*args: Any, **kw: Any) -> Any:
        entered.set()
        release.wait()  # deaf to cancel, like BAT looping in a damaged file
        kw["cancel"] = threading.Event()  # then finishes anyway, with temporary copies
        try:
            made.append(real_collect(*args, **kw))
            return made[-1]
        finally:
            finished.set()

    monkeypatch.setattr(collect_mod, "collect", stuck_collect)
    sub = Submission(project.blend, SubmitOptions(server_url=shaman_server.url))
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            sub.run()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    assert entered.wait(GUARD_S)
    sub.cancel()
    runner.join(GUARD_S)
    stuck_thread_alive = not finished.is_set()
    release.set()  # let the abandoned collector end: it must clean up after itself
    assert not runner.is_alive(), "cancel waited for the stuck collector"
    assert stuck_thread_alive  # run() returned while the collector was still stuck
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    assert shaman_server.counters.requests.get("upload", 0) == 0
    assert finished.wait(GUARD_S) and len(made) == 1
    for thread in threading.enumerate():
        if thread.name == "shaman-collect":
            thread.join(GUARD_S)  # the abandoned collector, ending now it was released
    plan = made[0]
    assert plan.temp_files or plan.temp_dir, "the library variant makes a temporary copy"
    assert not any(p.exists() for p in plan.temp_files)
    assert plan.temp_dir is None or not plan.temp_dir.exists()
