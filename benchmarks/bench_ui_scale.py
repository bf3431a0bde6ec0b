"""Blender's main thread at feature-film scale (issue 14, item 4): prints numbers.

    .venv/bin/python benchmarks/bench_ui_scale.py [--before DIR] [--repeat N]

Each tree (this repository, and ``--before DIR``: another checkout, e.g. main unpacked
with ``git archive``) is linked as the ``user_default`` extension of a throw-away Blender
user folder and enabled in its OWN ``bpy`` process (background mode), then measured with
the code the modal operator runs on Blender's main thread:

- *progress*: 100,000 ``ProgressEvent`` snapshots (100,000 files hashed and uploaded)
  queued at once, taken by ``submit_ops.poll`` tick after tick into the real property
  group, while the worker runs and again after it has finished; the worst tick;
- *result*: the last tick of a submission, ``finish`` + ``report_outcome``, for a result
  of 100,000 files with 10,000 missing, 10,000 from outside the project and 1,000
  warnings (a dry run, which lists the 100,000 files it would upload, and a submission);
- *draw*: the panel's ``draw()`` with that result and the missing list open, against a
  recording layout (background mode has no screen): median and worst of 20 draws;
- *floor*: a tick with nothing queued and a draw with no result, in the same process.

Timings swing on a shared machine: each time is measured as this thread's CPU time
(``time.thread_time``: what the code costs, without the spells another process held
the core) and as wall time; every figure is the worst (or median) of ``--repeat``
rounds, printed beside the floor of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXT_ID = "shaman_submitter"
MODULE = f"bl_ext.user_default.{EXT_ID}"

EVENTS = 100_000
FILES = 100_000
MISSING = 10_000
OUTSIDE = 10_000
WARNINGS = 1_000
DRAWS = 20
MAX_TICKS = 1_000_000
"""A bound on the ticks of one drain (far above what 100,000 events can take)."""


# -- the child: one tree in one bpy process --------------------------------------------------


def _enable(tree: Path) -> dict[str, Any]:
    import importlib

    importlib.import_module("bpy")  # first: it puts Blender's modules on the path
    import addon_utils

    user = Path(os.environ["BLENDER_USER_RESOURCES"])
    link = user / "extensions" / "user_default" / EXT_ID
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(tree, target_is_directory=True)
    mod = addon_utils.enable(MODULE, default_set=True)
    if mod is None:
        raise SystemExit(f"the extension in {tree} did not enable")
    base = MODULE + ".shaman_addon"
    return {name: importlib.import_module(f"{base}.{name}") for name in (
        "blender.submit_ops", "blender.properties", "app.runner", "app.present", "progress",
        "collect.plan", "submit.result")}


def _events(progress: Any) -> list[Any]:
    """100,000 snapshots: half hashing, half uploading, then the final one."""
    n, total = EVENTS, 5_000_000_000
    out = []
    for i in range(n - 1):
        phase = progress.Phase.HASHING if i < n // 2 else progress.Phase.UPLOADING
        out.append(progress.ProgressEvent(
            phase=phase, files_done=i, files_total=FILES, hash_bytes_done=i * 50_000,
            hash_bytes_total=total, upload_bytes_done=i * 40_000, upload_bytes_total=total,
            current_file=f"textures/set_{i % 97:02d}/t_{i:06d}.png", speed_bps=1e8 + i,
            eta_s=float(n - i)))
    out.append(progress.ProgressEvent(phase=progress.Phase.DONE, files_done=FILES,
                                      files_total=FILES, message="Done"))
    return out


def _timed(fn: Any, *args: Any) -> tuple[Any, float, float]:
    """``fn(*args)``, its wall time and its CPU time (seconds): the CPU time of this
    thread leaves out the spells another process held the core (2 shared cores)."""
    w0, c0 = time.perf_counter(), time.thread_time()
    value = fn(*args)
    return value, time.perf_counter() - w0, time.thread_time() - c0


def _ticks(ops: Any, state: Any, job: Any, *, finished: bool) -> dict[str, Any]:
    """Tick like the modal timer until the queue is empty (or poll says finished): the
    worst tick by CPU and by wall time (ms), and how many ticks it took."""
    walls, cpus = [], []
    for _ in range(MAX_TICKS):
        done, wall, cpu = _timed(ops.poll, state, job)
        walls.append(wall)
        cpus.append(cpu)
        if done or (not finished and job.events.empty()):
            break
    return {"worst_cpu_ms": max(cpus) * 1e3, "worst_wall_ms": max(walls) * 1e3,
            "ticks": len(walls)}


def measure_progress(mods: Any, state: Any) -> dict[str, Any]:
    ops, progress = mods["blender.submit_ops"], mods["progress"]
    events = _events(progress)
    out: dict[str, Any] = {}
    for finished in (False, True):
        q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for ev in events:
            q.put(ev)
        done = threading.Event()
        if finished:
            done.set()
        job = SimpleNamespace(events=q, done=done)
        key = "after_worker" if finished else "while_running"
        out[key] = _ticks(ops, state, job, finished=finished)
    out["phase_after"] = state.phase
    return out


def _result(mods: Any, *, dry_run: bool) -> Any:
    plan, result = mods["collect.plan"], mods["submit.result"]
    missing = [plan.MissingFile(f"//textures/missing/set_{i % 50:02d}/gone_{i:05d}.png",
                                (f"lib/props_{i % 20:02d}.blend",)) for i in range(MISSING)]
    outside = [plan.OutsideFile(f"/mnt/library/tex_{i:05d}.exr", f"/mnt/library/tex_{i:05d}.exr",
                                ("shots/main.blend",)) for i in range(OUTSIDE)]
    return result.SubmitResult(
        checkout_path=None if dry_run else "main-2026-12-02-040000",
        blend_checkout_path="shots/main.blend",
        worker_blend_path=None if dry_run else "{jobs}/main-2026-12-02-040000/shots/main.blend",
        files_total=FILES, bytes_total=FILES * 1_500_000, files_uploaded=FILES // 2,
        bytes_uploaded=FILES * 750_000, files_already_stored=FILES // 2,
        bytes_already_stored=FILES * 750_000, missing=missing,
        warnings=[f"odd path number {i} in lib/props_{i % 20:02d}.blend"
                  for i in range(WARNINGS)],
        phase_seconds={}, dry_run=dry_run,
        to_upload=[f"textures/set_{i % 97:02d}/t_{i:06d}.png" for i in range(FILES // 2)],
        outside_project=outside)


class _Op:
    def __init__(self) -> None:
        self.reports: list[tuple[set[str], str]] = []

    def report(self, kind: set[str], text: str) -> None:
        self.reports.append((kind, text))


def measure_result(mods: Any, state: Any, *, dry_run: bool) -> dict[str, Any]:
    """The modal operator's last tick: the outcome into the property group, the report."""
    ops, runner = mods["blender.submit_ops"], mods["app.runner"]
    outcome = runner.Outcome(_result(mods, dry_run=dry_run))
    job = SimpleNamespace(outcome=outcome, options=SimpleNamespace(
        cache_dir=Path(os.environ["BLENDER_USER_RESOURCES"]) / "cache"))
    _ret, wall, cpu = _timed(lambda: ops.report_outcome(_Op(), ops.finish(state, job)))
    present = mods["app.present"]
    cli_lines = (len(present.result_lines(outcome.result))
                 + len(present.missing_lines(outcome.result.missing)))
    return {"finish_cpu_ms": cpu * 1e3, "finish_wall_ms": wall * 1e3,
            "stored_missing": len(state.missing),
            "warning_lines": len(state.warnings_text.splitlines()),
            "cli_text_lines": cli_lines}


class _Layout:
    """Stands in for a UILayout: counts what would be drawn."""

    def __init__(self) -> None:
        object.__setattr__(self, "items", 0)

    def __getattr__(self, name: str) -> Any:
        def call(*_a: Any, **_kw: Any) -> Any:
            object.__setattr__(self, "items", self.items + 1)
            return self

        return call

    def __setattr__(self, name: str, value: Any) -> None:
        pass


def measure_draw(state: Any) -> dict[str, Any]:
    import bpy

    cls = bpy.types.SHAMAN_PT_render
    walls, cpus, items = [], [], 0
    for _ in range(DRAWS):
        layout = _Layout()
        panel = SimpleNamespace(layout=layout, _draw_result=cls._draw_result,
                                _draw_running=cls._draw_running)
        _ret, wall, cpu = _timed(cls.draw, panel, bpy.context)
        walls.append(wall)
        cpus.append(cpu)
        items = layout.items
    return {"median_ms": statistics.median(cpus) * 1e3, "worst_cpu_ms": max(cpus) * 1e3,
            "worst_wall_ms": max(walls) * 1e3, "items": items}


def child(tree: Path) -> dict[str, Any]:
    mods = _enable(tree)
    props = mods["blender.properties"]
    import bpy

    state = bpy.context.window_manager.shaman
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    floor_job = SimpleNamespace(events=q, done=threading.Event())
    floor_tick = _ticks(mods["blender.submit_ops"], state, floor_job, finished=False)
    props.reset_result(state)
    floor_draw = measure_draw(state)
    out: dict[str, Any] = {"floor_tick_ms": floor_tick["worst_cpu_ms"],
                           "floor_draw_ms": floor_draw["median_ms"]}
    out["progress"] = measure_progress(mods, state)
    for dry in (True, False):
        key = "dry_run" if dry else "submission"
        out[key] = measure_result(mods, state, dry_run=dry)
        state.show_missing = True
        out[key]["draw"] = measure_draw(state)
    return out


# -- the parent: one process per tree and round, one table ------------------------------------


def run_child(tree: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as user:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BLENDER_", "SHAMAN_"))}
        env["BLENDER_USER_RESOURCES"] = user
        proc = subprocess.run([sys.executable, __file__, "--child", str(tree)],
                              capture_output=True, text=True, env=env, cwd=user, timeout=900)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit(f"the child for {tree} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _worst(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return max(values)


ROWS = [
    ("floor: tick, nothing queued (ms CPU)", ("floor_tick_ms",)),
    ("floor: draw, no result (ms CPU, median)", ("floor_draw_ms",)),
    ("100,000 events, worker running: worst tick (ms CPU)",
     ("progress", "while_running", "worst_cpu_ms")),
    ("  worst tick (ms wall)", ("progress", "while_running", "worst_wall_ms")),
    ("  ticks taken", ("progress", "while_running", "ticks")),
    ("100,000 events, worker done: worst tick (ms CPU)",
     ("progress", "after_worker", "worst_cpu_ms")),
    ("  worst tick (ms wall)", ("progress", "after_worker", "worst_wall_ms")),
    ("  ticks taken", ("progress", "after_worker", "ticks")),
    ("dry run, 100,000 files, 10,000 missing: last tick (ms CPU)",
     ("dry_run", "finish_cpu_ms")),
    ("  last tick (ms wall)", ("dry_run", "finish_wall_ms")),
    ("  panel draw, missing list open (ms CPU, median)", ("dry_run", "draw", "median_ms")),
    ("  panel draw (ms CPU, worst)", ("dry_run", "draw", "worst_cpu_ms")),
    ("  missing entries stored in properties", ("dry_run", "stored_missing")),
    ("  warning lines stored", ("dry_run", "warning_lines")),
    ("  command line text lines", ("dry_run", "cli_text_lines")),
    ("submission, same lists: last tick (ms CPU)", ("submission", "finish_cpu_ms")),
    ("  last tick (ms wall)", ("submission", "finish_wall_ms")),
    ("  panel draw, missing list open (ms CPU, median)",
     ("submission", "draw", "median_ms")),
    ("  panel draw (ms CPU, worst)", ("submission", "draw", "worst_cpu_ms")),
    ("  command line text lines", ("submission", "cli_text_lines")),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--before", type=Path, metavar="DIR",
                        help="another checkout to measure beside this one (e.g. main)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="rounds per tree; the worst of each figure is printed")
    args = parser.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.child.resolve())), flush=True)
        return 0
    trees = [("after", REPO)] + ([("before", args.before.resolve())] if args.before else [])
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in trees}
    for _ in range(max(1, args.repeat)):
        for name, tree in trees:  # interleaved, so a busy spell hits both
            runs[name].append(run_child(tree))
    names = [name for name, _ in reversed(trees)]
    print(f"{'(worst of ' + str(args.repeat) + ' rounds)':<62}" + "".join(
        f"{n:>12}" for n in names))
    for label, path in ROWS:
        print(f"{label:<62}" + "".join(f"{_worst(runs[n], *path):>12.1f}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
