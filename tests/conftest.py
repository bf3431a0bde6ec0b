"""Shared pytest set-up: the run fails when any test is skipped or xfailed.

Real `bpy` installs on this machine, so every test must run; a skip would hide a hole.
Fixtures used by more than one test folder are here (or re-exported from their support
module); a folder's own fixtures are in its own conftest.py. No fixture name is defined
twice.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from blend_templates import Templates
from blend_templates import generate as generate_templates
from blendgen import ProductionInfo, generate, generate_edge_cases
from fault_report import *  # noqa: F403  (fixture fault_row, the fault report hooks)
from render_fixtures import *  # noqa: F403  (fixture: render_production)
from server_fixtures import *  # noqa: F403  (fixtures: shaman_server, ...)
from tls_fixtures import *  # noqa: F403  (fixture: tls_cert)


@pytest.fixture(scope="session")
def every_kind_production_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine every-kind production; copy it before changing it."""
    out = tmp_path_factory.mktemp("production")
    generate(out, libraries=2, files=12, total_bytes=12 * 100, kinds="all", seed=1)
    return out


@pytest.fixture(scope="session")
def every_kind_production(every_kind_production_dir: Path) -> ProductionInfo:
    """The every-kind production of ``blendgen`` (2 libraries + a chain; shared: tests
    must not modify it)."""
    return ProductionInfo.load(every_kind_production_dir)


@pytest.fixture(scope="session")
def basic_production(tmp_path_factory: pytest.TempPathFactory) -> ProductionInfo:
    """A small production without the exotic kinds (fast to copy around)."""
    out = tmp_path_factory.mktemp("basic")
    return generate(out, libraries=2, files=4, total_bytes=400, kinds="basic", seed=2)


@pytest.fixture(scope="session")
def edge(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The corner-case files of ``blendgen.EdgeCases`` (paths by name)."""
    return generate_edge_cases(tmp_path_factory.mktemp("edge"))


@pytest.fixture(scope="session")
def blend_templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    """Template .blend files (``blend_templates.VARIANTS``), made once per session in one
    bpy process; ``blend_templates.Project`` copies one into a test's own folder."""
    return generate_templates(tmp_path_factory.mktemp("blend-templates"))


MANY_MISSING = 10_000
"""Missing files of ``many_missing_blend``: the UI's long lists at feature-film scale."""


@pytest.fixture(scope="session")
def many_missing_blend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real .blend (made by bpy, in one process) whose ``MANY_MISSING`` image
    data-blocks each reference a file that is not on disk (``//missing/...``); made once
    per session, shared: tests must not modify it."""
    from fault_blends import make_blend

    blend = tmp_path_factory.mktemp("many-missing") / "shot.blend"
    return make_blend(blend, [f"//missing/set_{i % 40:02d}/gone_{i:05d}.png"
                              for i in range(MANY_MISSING)])


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp folder, for this test only: temporary rewritten copies
    (``shaman-pack-*``) land here and the test checks that none is left. Other processes
    on the machine use /tmp too."""
    folder = tmp_path / "systmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


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
