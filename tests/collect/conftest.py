"""Fixtures of the collecting tests (the shared productions are in ``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from blendgen import ProductionInfo, generate


@pytest.fixture(scope="module")
def hideable_production(tmp_path_factory: pytest.TempPathFactory) -> ProductionInfo:
    """An every-kind production of its own (3 libraries): the end-to-end tests hide it
    while they open the checkout, so Blender cannot fall back on a source file."""
    return generate(tmp_path_factory.mktemp("e2e-production"), libraries=3, files=6, seed=7)
