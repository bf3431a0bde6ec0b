"""The fault report: one row per fault, bad input or hostile path the suite exercised.

Issue 6 asks the test run itself to say, for each case, what the user saw and what end
state was checked. Tests call the ``fault_row`` fixture with values they OBSERVED (the
error's text, the counts they read off the server's disk); nothing in a row is written
ahead of time. At the end of the run the rows become ``test-report/faults.md`` and a
short summary in the terminal, each with the test's outcome, so a failing case shows up
as failing in the table too.

Re-exported by ``conftest.py`` (fixture and hooks).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

__all__ = ["FaultRow", "fault_row", "pytest_runtest_makereport", "pytest_terminal_summary"]

REPORT_DIR = "test-report"
REPORT_FILE = "faults.md"
AREAS = ("fault", "bad input", "security")
_SHOWN_CHARS = 110  # per cell in the terminal summary; the file keeps everything


@dataclass
class FaultRow:
    """One case: what was done, what the person saw, what end state was checked."""

    area: str
    case: str
    saw: str
    end_state: str
    measured: str
    nodeid: str
    outcome: str = "not finished"


_ROWS: list[FaultRow] = []
_OUTCOMES: dict[str, str] = {}


def _clean(text: str) -> str:
    """One line, no table-breaking pipes."""
    return " ".join(str(text).split()).replace("|", "\\|")


@pytest.fixture
def fault_row(request: pytest.FixtureRequest) -> Iterator[Callable[..., FaultRow]]:
    """``fault_row(case, saw=..., end_state=..., area="fault", measured="")``.

    ``saw`` is what the user saw (an error's ``str()``, or the outcome of a success),
    ``end_state`` what the test read back and checked on the server's disk and locally.
    """
    rows: list[FaultRow] = []

    def add(case: str, *, saw: str, end_state: str, area: str = "fault",
            measured: str | dict[str, Any] = "") -> FaultRow:
        if area not in AREAS:
            raise ValueError(f"area {area!r} is not one of {AREAS}")
        if isinstance(measured, dict):
            measured = ", ".join(f"{k}={v}" for k, v in measured.items())
        row = FaultRow(area, case, str(saw), end_state, str(measured), request.node.nodeid)
        rows.append(row)
        _ROWS.append(row)
        return row

    yield add


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Remember each test's outcome, so every row says whether its test passed."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or report.failed:
        previous = _OUTCOMES.get(item.nodeid)
        if previous != "failed":  # a teardown error after a pass still marks it failed
            _OUTCOMES[item.nodeid] = "failed" if report.failed else report.outcome


def _table(rows: list[FaultRow]) -> list[str]:
    lines = [
        "| area | case | what the user saw | end state checked | measured | result | test |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.area} | {_clean(r.case)} | {_clean(r.saw)} | {_clean(r.end_state)} | "
            f"{_clean(r.measured)} | {r.outcome} | `{r.nodeid.split('::', 1)[-1]}` |"
        )
    return lines


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Write the table to ``test-report/faults.md`` and print a short version."""
    if not _ROWS:
        return
    for row in _ROWS:
        row.outcome = _OUTCOMES.get(row.nodeid, "not finished")
    rows = sorted(_ROWS, key=lambda r: (AREAS.index(r.area), r.nodeid))
    folder = Path(config.rootpath) / REPORT_DIR
    folder.mkdir(exist_ok=True)
    path = folder / REPORT_FILE
    passed = sum(r.outcome == "passed" for r in rows)
    head = [
        "# Faults, bad input and hostile paths",
        "",
        f"Written by the test run of {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: "
        f"{len(rows)} cases, {passed} passed. Every cell below was observed by the test "
        "named in the last column; 'result' is that test's outcome (see tests/fault_report.py).",
        "",
    ]
    path.write_text("\n".join(head + _table(rows)) + "\n", "utf-8")

    tr = terminalreporter
    tr.write_sep("=", f"fault report: {len(rows)} cases, {passed} passed -> {path}")
    for r in rows:
        mark = "ok  " if r.outcome == "passed" else r.outcome.upper() + " "
        tr.write_line(f"{mark}[{r.area}] {_short(r.case)}")
        tr.write_line(f"      saw: {_short(r.saw)}")
        tr.write_line(f"      end: {_short(r.end_state)}")
        if r.measured:
            tr.write_line(f"      measured: {_short(r.measured)}")

