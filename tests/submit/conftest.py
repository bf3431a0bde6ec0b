"""Fixtures of the submission tests (the template .blend files and ``private_tmp`` are in
``tests/conftest.py``)."""

from __future__ import annotations

import pytest

import blendgen


@pytest.fixture(scope="module")
def every_kind_3mb_production(tmp_path_factory: pytest.TempPathFactory) -> blendgen.ProductionInfo:
    """Every kind of dependency, 2 libraries, 30 bulk files of 3 MB in all."""
    out = tmp_path_factory.mktemp("production")
    return blendgen.generate(out, libraries=2, files=30, total_bytes=3_000_000, kinds="all")
