"""One submission on a worker thread (app.runner): outcome, cancel, cleanup, follow().

Real submissions of a small production against the local server; the hashing seam
(``checksums.sha256_file``) holds a submission mid-way so a cancel lands where wanted.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from shaman_addon.app.exit_codes import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK
from shaman_addon.app.runner import Outcome, SubmissionRunner, check_server, follow
from shaman_addon.app.settings import CLI_NAMES, Run, Settings, client_settings, submit_options
from shaman_addon.errors import BlendFileError, Cancelled
from shaman_addon.progress import Phase
from shaman_addon.submit import SubmitOptions
from shaman_addon.submit import checksums as checksums_mod

from blendgen import ProductionInfo

SAFETY_S = 60


def _options(server: Any, tmp_path: Path, **run: Any) -> SubmitOptions:
    return submit_options(Settings(server_url=server.url, jobs=2),
                          Run(cache_dir=tmp_path / "cache", **run), CLI_NAMES)


class _Runner(SubmissionRunner):
    """Records where ``cleanup`` ran (it must be the worker, before ``done``)."""

    cleaned_on: str = ""
    done_when_cleaned: bool | None = None

    def cleanup(self) -> None:
        self.cleaned_on = threading.current_thread().name
        self.done_when_cleaned = self.done.is_set()


def _hold_hashing(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Every hash waits for the submission's cancel; returns 'a hash has started'."""
    real = checksums_mod.sha256_file
    started = threading.Event()

    def held(path: Path, *, cancel: threading.Event | None = None, **kw: Any) -> Any:
        started.set()
        assert cancel is not None
        cancel.wait(SAFETY_S)
        return real(path, cancel=cancel, **kw)

    monkeypatch.setattr(checksums_mod, "sha256_file", held)
    return started


def _drain(runner: SubmissionRunner) -> list[Phase]:
    phases = []
    while not runner.events.empty():
        phases.append(runner.events.get_nowait().phase)
    return phases


def test_a_submission_ends_with_its_result_and_cleanup_on_the_worker(
    shaman_server: Any, basic_production: ProductionInfo, tmp_path: Path
) -> None:
    runner = _Runner(basic_production.main_blend, _options(shaman_server, tmp_path),
                     thread_name="shaman-submit-test")
    with pytest.raises(RuntimeError, match="not finished"):
        runner.outcome  # noqa: B018
    runner.start()
    assert runner.join(SAFETY_S)
    outcome = runner.outcome
    assert outcome.error is None and not outcome.cancelled
    assert outcome.exit_code == EXIT_OK and outcome.message == ""
    assert outcome.result is not None and outcome.result.checkout_path
    assert runner.cleaned_on == "shaman-submit-test" and runner.done_when_cleaned is False
    assert _drain(runner)[-1] is Phase.DONE


@pytest.mark.local_server_only
def test_cancel_mid_submission_gives_a_cancelled_outcome(
    shaman_server: Any, basic_production: ProductionInfo, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = _hold_hashing(monkeypatch)
    runner = _Runner(basic_production.main_blend, _options(shaman_server, tmp_path))
    runner.start()
    assert started.wait(SAFETY_S)
    assert runner.cancel() is True
    assert runner.cancel() is False  # once is enough; again is harmless
    assert runner.join(SAFETY_S)
    outcome = runner.outcome
    assert outcome.cancelled and outcome.result is None
    assert isinstance(outcome.error, Cancelled)
    assert outcome.exit_code == EXIT_CANCELLED and outcome.message == str(outcome.error)
    assert runner.cleaned_on and runner.done_when_cleaned is False
    assert _drain(runner)[-1] is Phase.CANCELLED
    assert shaman_server.counters.checkouts == []


@pytest.mark.local_server_only
def test_cancel_before_start_never_runs_the_submission(
    shaman_server: Any, basic_production: ProductionInfo, tmp_path: Path
) -> None:
    runner = _Runner(basic_production.main_blend, _options(shaman_server, tmp_path))
    runner.cancel()
    runner.start()
    assert runner.join(SAFETY_S)
    assert runner.outcome.cancelled
    assert "before it started" in runner.outcome.message
    assert runner.cleaned_on  # cleanup runs whatever happened
    assert not any(shaman_server.counters.requests.values())


def test_failures_are_outcomes_not_exceptions(
    shaman_server: Any, basic_production: ProductionInfo, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    not_blend = tmp_path / "notes.blend"
    not_blend.write_text("hello")
    runner = SubmissionRunner(not_blend, _options(shaman_server, tmp_path))
    runner.start()
    assert runner.join(SAFETY_S)
    assert isinstance(runner.outcome.error, BlendFileError)
    assert runner.outcome.exit_code == EXIT_FAILED and not runner.outcome.cancelled

    def broken(*_a: Any, **_kw: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(checksums_mod, "sha256_file", broken)

    class Failing(SubmissionRunner):
        def cleanup(self) -> None:
            raise OSError("cleanup failed too")

    runner = Failing(basic_production.main_blend, _options(shaman_server, tmp_path))
    runner.start()
    assert runner.join(SAFETY_S)  # an error in cleanup still ends with an outcome
    assert isinstance(runner.outcome.error, RuntimeError)
    assert runner.outcome.message == "Unexpected error (RuntimeError): a bug"
    assert runner.outcome.exit_code == EXIT_FAILED


def test_follow_ticks_until_the_end_and_ctrl_c_cancels(
    shaman_server: Any, basic_production: ProductionInfo, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks: list[bool] = []
    runner = SubmissionRunner(basic_production.main_blend,
                              _options(shaman_server, tmp_path, dry_run=True))
    outcome = follow(runner, ticks.append, poll_s=0.01)
    assert outcome.error is None and outcome.result is not None and outcome.result.dry_run
    assert ticks[-1] is True and ticks.count(True) == 1

    started = _hold_hashing(monkeypatch)
    ticks.clear()

    def impatient(finished: bool) -> None:
        ticks.append(finished)
        if started.is_set() and not finished:
            raise KeyboardInterrupt

    # a cache of its own: with the first run's checksums nothing would be hashed
    runner = SubmissionRunner(basic_production.main_blend,
                              _options(shaman_server, tmp_path / "second"))
    outcome = follow(runner, impatient, poll_s=0.01)
    assert isinstance(outcome, Outcome) and outcome.cancelled
    assert runner.done.is_set() and ticks[-1] is True


def test_check_server_answers_in_one_attempt(any_style_server: Any) -> None:
    answer = check_server(any_style_server.url, client_settings(Settings()))
    assert answer.ok and answer.reachable and answer.is_manager and answer.shaman_enabled
