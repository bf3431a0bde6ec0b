"""Fixtures of the fault table (faults, bad input, security).

Every submission of the table gets its ``SubmitOptions`` and ``ClientSettings`` from the
``opts`` fixture: the ONE place the client's settings are made, so that a parametrised
fixture can run the whole table against each upload strategy (the requests path and the
pipelined one) by adding the strategy's fields in ``Options.client``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shaman_addon.shaman.client import ClientSettings
from shaman_addon.submit import SubmitOptions

from blend_templates import Project, Templates

FAST: dict[str, Any] = {"backoff_s": 0.01, "max_attempts": 4, "connect_timeout": 2.0,
                        "read_timeout": 20.0}
"""The table's default client settings: short back-off, bounded waits."""


class Options:
    """Makes the table's options; ``strategy`` holds the upload strategy's settings,
    applied on top of every test's own (empty until there is more than one strategy)."""

    def __init__(self, strategy: dict[str, Any]) -> None:
        self.strategy = strategy

    @property
    def fast(self) -> ClientSettings:
        """The settings a test gets unless it asks for others."""
        return self.client(**FAST)

    def client(self, **fields: Any) -> ClientSettings:
        """Client settings with exactly ``fields`` (the rest at their defaults), plus the
        upload strategy under test."""
        return ClientSettings(**{**fields, **self.strategy})

    def __call__(self, url: str, tmp_path: Path, *, client: dict[str, Any] | None = None,
                 **kw: Any) -> SubmitOptions:
        """Options for a submission to ``url`` with the cache in ``tmp_path/cache``;
        ``client`` replaces the ``FAST`` client settings."""
        kw.setdefault("cache_dir", tmp_path / "cache")
        settings = self.client(**(FAST if client is None else client))
        return SubmitOptions(server_url=url, client_settings=settings, **kw)


@pytest.fixture
def opts() -> Options:
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
