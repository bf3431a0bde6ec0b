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


@pytest.fixture
def opts() -> Options:
    """The table's options; the upload strategy is the client's default for now."""
    return Options({})


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
