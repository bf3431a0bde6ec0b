"""Traces kept in the cache folder, keyed by the .blend's identity: reading a large
.blend again costs seconds; an unchanged one's stored paths are the same."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from .rewrite import write_whole
from .trace import BlendTrace, trace_blend

log = logging.getLogger(__name__)

TRACE_CACHE_VERSION = "3"
"""Bump it when what a trace holds changes, so cached traces are read again."""


def traced(path: Path, st: os.stat_result, cache_dir: Path | None) -> BlendTrace:
    """The trace of ``path`` (whose ``stat`` is ``st``), from the cache when there is one."""
    if cache_dir is None:
        return trace_blend(path)
    key = (f"{TRACE_CACHE_VERSION}|{path}|{st.st_size}|{st.st_mtime_ns}|"
           f"{st.st_ctime_ns}|{st.st_ino}")
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    cache_file = cache_dir / "traces" / f"{digest}.json"
    try:
        return BlendTrace.from_json(json.loads(cache_file.read_text("utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    result = trace_blend(path)
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        write_whole(tmp, json.dumps(result.to_json()).encode("utf-8"))
        os.replace(tmp, cache_file)
    except OSError as exc:
        log.warning("could not write the trace cache %s: %s", cache_file, exc)
    return result
