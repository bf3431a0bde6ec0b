"""A command-line submission held at its first upload, for tests that interrupt it.

Both signal tests (SIGINT and SIGTERM) need the same start: the local server hangs the
next uploads, the command line runs as its own process, and the test waits (event
ordering, bounded) until the first upload has reached the server or the process ended.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAFETY_S = 300  # a guard against a hang, never a timing assertion


def submit_held_at_first_upload(server: Any, blend: Path,
                                env: dict[str, str]) -> subprocess.Popen[str]:
    """``python -m shaman_addon submit BLEND --server URL``, returned once the server has
    seen its first upload (held there) or the process has ended."""
    server.faults.hang_next("upload", 50)
    proc = subprocess.Popen(
        [sys.executable, "-m", "shaman_addon", "submit", str(blend), "--server", server.url],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    tick = threading.Event()
    for _ in range(SAFETY_S * 100):
        if server.counters.requests.get("upload", 0) >= 1 or proc.poll() is not None:
            break
        tick.wait(0.01)
    return proc
