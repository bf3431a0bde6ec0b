"""Shaman Submitter's core: collect a .blend's dependencies and send them to Shaman.

Everything in this package except ``shaman_addon.blender`` runs on plain Python without
``bpy``, so the command line (``python -m shaman_addon``) and the tests use it directly.
"""

from __future__ import annotations

__version__ = "0.1.0"
