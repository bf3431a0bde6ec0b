"""Running the things being measured as processes: the CLI and the reference floor.

Everything measured runs as its own process, as an artist or a farm script would run it,
so interpreter start-up and imports are part of the time (for the floor as well), and
the peak memory reported is that one process's own: its ``VmHWM`` read from
``/proc/<pid>/status`` while it runs. Not ``wait4``'s ``ru_maxrss``: on Linux a child
keeps the high-water mark of the process that forked it across ``exec``, so a big
benchmark process would show as the child's peak.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
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
    peak_rss_bytes: int  # its own VmHWM, last read before it exited
    returncode: int
    stdout: str
    stderr: str
    doc: dict[str, Any] = field(default_factory=dict)  # its JSON output, when it printed one
    cpu_note: str = ""


PEAK_POLL_S = 0.02
"""How often a running process's ``VmHWM`` is read. It is a high-water mark, so a late
read loses nothing but what the process grew by in its last few milliseconds."""


def vm_hwm_bytes(pid: int) -> int | None:
    """The peak resident size of process ``pid`` so far (``VmHWM``), None once it is gone
    (or a zombie, whose memory is already released)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


class PeakWatch:
    """Reads a child's ``VmHWM`` every ``PEAK_POLL_S`` on a thread until ``stop()``;
    ``peak`` is the highest value read (0 if it exited before the first read)."""

    def __init__(self, pid: int, interval: float = PEAK_POLL_S) -> None:
        self.pid = pid
        self.peak = 0
        self.reads = 0
        self._interval = interval
        self._done = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._poll, name=f"peak {pid}", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while True:  # bounded by the child's life: stop() follows its exit
            value = vm_hwm_bytes(self.pid)
            with self._changed:
                if value is not None:
                    self.peak = max(self.peak, value)
                self.reads += 1
                self._changed.notify_all()
            if self._done.wait(self._interval):
                return

    def read_again(self, timeout: float = 30.0) -> bool:
        """Wait until a read that started after this call has finished (False: timeout)."""
        with self._changed:
            target = self.reads + 2  # the read under way may have started before the call
            return self._changed.wait_for(lambda: self.reads >= target, timeout)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def run_process(cmd: list[str], *, cwd: Path = REPO, env: dict[str, str] | None = None,
                on_spawn: Callable[[int, PeakWatch], None] | None = None) -> Run:
    """Run ``cmd``, timing it from spawn to exit and reading its own peak RSS.
    ``on_spawn(pid, watch)`` is called once the child runs and is watched (tests)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env=env)
        watch = PeakWatch(proc.pid)
        if on_spawn is not None:
            on_spawn(proc.pid, watch)
        # The child stays a zombie until wait4 reaps it, so its pid cannot be reused
        # while the watch reads it.
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        peak = watch.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        run = Run(wall, usage.ru_utime + usage.ru_stime, peak,
                  proc.returncode, out.read(), err.read())
    if run.stdout.strip().startswith("{"):
        with contextlib.suppress(ValueError):
            run.doc = json.loads(run.stdout)
    return run


def compile_package(python: str) -> None:
    """Write the package's bytecode before anything is measured, as installing it would.
    Without it every measured process compiles ~100 modules from source (0.2-0.3 s of
    CPU) when ``PYTHONDONTWRITEBYTECODE`` is set, as on this machine: a start-up cost
    an artist's installed copy pays once, not per submission."""
    subprocess.run([python, "-m", "compileall", "-q", str(REPO / "shaman_addon")],
                   check=True, capture_output=True, timeout=300)


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
