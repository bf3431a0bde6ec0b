"""The submission history: one JSON line per submission in the cache folder.

A TD asking "what did this shot send last Tuesday, and from which Blender?" reads
``history.jsonl``; one line per record keeps appends cheap and a half-written last line
(a crash) from spoiling the others.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HISTORY_FILE_NAME = "history.jsonl"


def append_history(cache_dir: Path, record: dict[str, Any]) -> Path:
    """Append ``record`` as one line to ``<cache_dir>/history.jsonl``; returns the file.

    The line is written with a single ``write`` on a file opened for appending, so two
    processes appending at once do not interleave their lines.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / HISTORY_FILE_NAME
    line = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
    return path


def read_history(cache_dir: Path) -> Iterator[dict[str, Any]]:
    """Every readable record, oldest first; a damaged line is skipped with a warning."""
    path = cache_dir / HISTORY_FILE_NAME
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s line %d is damaged; skipped", path, number)
