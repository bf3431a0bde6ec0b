"""The last render-job choice per .blend file, remembered outside the artist's file.

A small JSON file in the extension's own user folder, keyed by the .blend's absolute
path: remembering a choice never modifies or dirties the artist's file (a scene property
would be saved into the .blend and mark it as changed on every click), and the choice
is there at the next start whether or not the file was saved since. A file that moves
starts from the defaults again. Plain Python (no ``bpy``): tested without Blender.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MAX_FILES = 500
"""Files remembered; the least recently written are forgotten first."""
MAX_BYTES = 4 << 20
"""A larger memory file is not read (it was not written by this code)."""


class ChoiceMemory:
    """``{blend path: record}`` in one JSON file, replaced atomically on each write."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read_all(self) -> dict[str, Any]:
        try:
            if self.path.stat().st_size > MAX_BYTES:
                return {}
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            if not isinstance(exc, FileNotFoundError):
                log.warning("ignoring the render job memory %s: %s", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, blend: str) -> dict[str, Any]:
        """The record of ``blend`` ({} when none)."""
        if not blend:
            return {}
        record = self._read_all().get(blend)
        return record if isinstance(record, dict) else {}

    def put(self, blend: str, record: dict[str, Any]) -> None:
        """Remember ``record`` for ``blend`` (an unsaved file, '', is not remembered)."""
        if not blend:
            return
        data = self._read_all()
        data.pop(blend, None)
        data[blend] = record  # insertion order: the newest last
        while len(data) > MAX_FILES:
            data.pop(next(iter(data)))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".choices-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, default=str)
            os.replace(tmp, self.path)
        except OSError as exc:  # remembering is a convenience: never fail a click over it
            log.warning("could not remember the render job choice in %s: %s", self.path, exc)
