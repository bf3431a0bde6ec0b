"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest

import blendgen


@pytest.fixture(scope="module")
def one_library_production(tmp_path_factory: pytest.TempPathFactory) -> blendgen.ProductionInfo:
    """A basic production: one library, 8 bulk files, 400 kB (a real submission's worth
    for the progress bar and Ctrl+C)."""
    return blendgen.generate(tmp_path_factory.mktemp("cli-prod"), libraries=1, files=8,
                             total_bytes=400_000, kinds="basic")
