"""Collecting: from a .blend to a pack plan, without any network or ``bpy``.

``collect()`` traces the .blend and every library it links (BAT), expands each stored
path to files on disk, gives every file its place in the checkout and writes rewritten
copies of the .blend files whose paths must change. ``deps`` prints its plan; a
submission streams it into hashing and uploads.
"""

from __future__ import annotations

from .collector import collect, find_project_root
from .plan import MissingFile, PackPlan, PlanFile

__all__ = ["MissingFile", "PackPlan", "PlanFile", "collect", "find_project_root"]
