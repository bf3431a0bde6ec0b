"""Shaman Submitter: the Blender extension's entry point.

Blender imports this file as a package (``bl_ext.<repo>.shaman_submitter``) and calls
``register()`` / ``unregister()``. Outside Blender (pytest collecting from a folder whose
name is not an identifier, a linter, plain Python) importing it must do nothing, so the
Blender layer is imported lazily, inside the two functions.
"""

from __future__ import annotations


def register() -> None:
    from .shaman_addon.blender import register as _register

    _register(__package__)


def unregister() -> None:
    from .shaman_addon.blender import unregister as _unregister

    _unregister()
