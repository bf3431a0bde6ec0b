"""Shared pytest set-up: the run fails when any test is skipped or xfailed.

Real `bpy` installs on this machine, so every test must run; a skip would hide a hole.
Fixtures live in their own modules and are re-exported here.
"""

from __future__ import annotations

import pytest

from blend_fixtures import *  # noqa: F403  (fixtures: production, basic_production, ...)
from fault_report import *  # noqa: F403  (fixture fault_row, the fault report hooks)
from server_fixtures import *  # noqa: F403  (fixtures: shaman_server, ...)
from tls_fixtures import *  # noqa: F403  (fixture: tls_cert)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    not_run = [
        rep.nodeid
        for key in ("skipped", "xfailed", "xpassed")
        for rep in reporter.stats.get(key, [])
    ]
    if not_run and session.exitstatus == 0:
        reporter.write_line(
            f"FAILED: {len(not_run)} test(s) skipped or xfail; every test must run here:",
            red=True,
        )
        for nodeid in not_run:
            reporter.write_line(f"  {nodeid}", red=True)
        session.exitstatus = 1
