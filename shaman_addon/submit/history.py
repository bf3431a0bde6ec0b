"""The submission history: one JSON line per submission in the cache folder.

A TD asking "what did this shot send last Tuesday, and from which Blender?" reads
``history.jsonl``; one line per record keeps appends cheap and a half-written last line
(a crash) from spoiling the others.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
