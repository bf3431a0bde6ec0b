"""Fixtures of the Blender-layer tests."""

from __future__ import annotations

from typing import Any

import pytest
from blender_scripts.runner import make_production


@pytest.fixture(scope="module")
def tiny_production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``blender_scripts/make_production.py``: one main file using one texture, with a
    throw-away Blender user folder."""
    root = tmp_path_factory.mktemp("production")
    return make_production(root, root / "blender-user")


@pytest.fixture(scope="module")
def production_missing(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``tiny_production`` that also references a texture that does not exist."""
    root = tmp_path_factory.mktemp("production-missing")
    return make_production(root, root / "blender-user", "--missing")
