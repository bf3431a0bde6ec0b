"""Fixtures of the fault table (faults, bad input, security).

Every submission of the table gets its ``SubmitOptions`` and ``ClientSettings`` from the
``opts`` fixture (``fault_helpers.Options``): the ONE place the client's settings are
made, so that parametrising this fixture runs the whole table against each upload
strategy (the requests path and the pipelined one).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from blend_templates import Project, Templates
from fault_helpers import Options

STRATEGIES = {
    "pipelined": {},  # the client's default on plain http: small uploads on lanes
    "requests": {"pipelining": False},  # every upload through requests
}


@pytest.fixture(params=sorted(STRATEGIES))
def opts(request: pytest.FixtureRequest) -> Options:
    """The table's options: every case runs once per upload strategy, and must end the
    same way with each (the report's test ids say which)."""
    return Options(STRATEGIES[request.param])


@pytest.fixture
def files(blend_templates: Templates, tmp_path: Path) -> Project:
    """A real .blend and 20 files of its own, 1 byte to ~1.9 MB (several upload chunks for
    the big ones)."""
    return Project(blend_templates, tmp_path, [1 + i * 100_000 for i in range(20)])


@pytest.fixture
def lib_files(blend_templates: Templates, tmp_path: Path) -> Project:
    """``files`` with a linked library that uses a file outside the project: the
    collector writes a rewritten copy of the library (a temporary copy to clean up)."""
    return Project(blend_templates, tmp_path, [1 + i * 100_000 for i in range(20)],
                   variant="library")
