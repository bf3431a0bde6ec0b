"""Running the things being measured as processes: the CLI and the reference floor.

Everything measured runs as its own process, as an artist or a farm script would run it,
so interpreter start-up and imports are part of the time (for the floor as well), and
the peak memory reported is that one process's own (``wait4``'s rusage), not the
benchmark's.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FLOOR_SCRIPT = REPO / "benchmarks" / "reference_floor.py"


@dataclass
class Run:
    """One finished process: wall seconds, peak RSS, exit code, what it printed."""

    wall_s: float
    cpu_s: float  # user + system seconds of the process itself
    peak_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str
    doc: dict[str, Any] = field(default_factory=dict)  # its JSON output, when it printed one
    cpu_note: str = ""


def run_process(cmd: list[str], *, cwd: Path = REPO, env: dict[str, str] | None = None) -> Run:
    """Run ``cmd``, timing it from spawn to exit and reading its own peak RSS."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        run = Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024,
                  proc.returncode, out.read(), err.read())
    if run.stdout.strip().startswith("{"):
        with contextlib.suppress(ValueError):
            run.doc = json.loads(run.stdout)
    return run


def _checked(run: Run, what: str) -> Run:
    if run.returncode != 0:
        raise RuntimeError(f"{what} exited {run.returncode}:\n{run.stderr[-3000:]}")
    return run


def submit(python: str, blend: Path, server: str, cache_dir: Path, *,
           jobs: int | None = None) -> Run:
    """``python -m shaman_addon submit`` as a farm script would call it."""
    cmd = [python, "-m", "shaman_addon", "submit", str(blend), "--server", server,
           "--cache-dir", str(cache_dir), "--json", "--quiet"]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return _checked(run_process(cmd, env=env), f"submit {blend}")


def deps(python: str, blend: Path) -> Run:
    """``python -m shaman_addon deps --json``: tracing alone, nothing sent."""
    cmd = [python, "-m", "shaman_addon", "deps", str(blend), "--json"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return _checked(run_process(cmd, env=env), f"deps {blend}")


def floor(python: str, server: str, file_list: Path) -> Run:
    """The fixed reference script (benchmarks/reference_floor.py) on the same files."""
    cmd = [python, str(FLOOR_SCRIPT), "--server", server, str(file_list)]
    return _checked(run_process(cmd), "the reference floor")


def python_default() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable
