"""Pytest fixtures for rendering (re-exported by ``tests/conftest.py``).

``render_production``: the production of ``render_production.py`` (a camera, lights, a
texture in its own folder, a linked library with its own texture, animation over frames
3-12 at 23.976 fps), made once per session by real Blender. Shared: copy it
(``RenderProduction.copy_to``) before changing or moving anything.
"""

from __future__ import annotations

import pytest

from render_production import RenderProduction, generate

__all__ = ["render_production"]


@pytest.fixture(scope="session")
def render_production(tmp_path_factory: pytest.TempPathFactory) -> RenderProduction:
    """A production made to be rendered (shared by the session: do not change it)."""
    return generate(tmp_path_factory.mktemp("render-production"))
