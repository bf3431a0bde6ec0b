"""The Blender layer at feature-film scale (issue 14), in one fresh ``bpy`` process.

    python scale_scenario.py long_lists '{"blend": ..., "server_url": ...}'

Submits a .blend with 10,000 missing files (dry runs) through the operator's headless
path and through the interactive path's functions (``prepare_job``, ``poll`` ticks,
``finish``), draws the panel, and works a finished worker's queue off tick by tick.
Prints ``RESULT {json}``.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy
from _harness import emit, link_extension, open_blend, state
from scenario import call_submit, draw_panel, ext, set_prefs

TIMEOUT_S = 120.0


def stored() -> dict[str, Any]:
    st = state()
    return {"missing": [m.path for m in st.missing], "missing_total": st.missing_total,
            "more_missing": st.more_missing, "warnings": st.warnings_text.splitlines(),
            "result_ok": st.result_ok, "error": st.error}


def interactive(mods: Any, server_url: str) -> dict[str, Any]:
    """What invoke() and modal() do, minus the event loop (background mode has none)."""
    ops = mods["blender.submit_ops"]
    job, _warnings = mods["blender.prepare"].prepare_job(
        bpy.context, server_url=server_url, dry_run=True, background=False)
    ops.begin(state(), job)
    job.start()
    ticks, finished = 0, False
    deadline = time.monotonic() + TIMEOUT_S
    while not finished and time.monotonic() < deadline:
        finished = ops.poll(state(), job)
        ticks += 1
        time.sleep(0.02)
    ops.finish(state(), job)
    return {"finished": finished, "ticks": ticks, **stored()}


def long_queue(mods: Any, n: int) -> dict[str, Any]:
    """``n`` real snapshots and the final one behind a finished worker, a zero budget:
    one snapshot per tick, and poll says finished only with the final one applied."""
    progress, ops = mods["progress"], mods["blender.submit_ops"]
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for i in range(n):
        q.put(progress.ProgressEvent(phase=progress.Phase.UPLOADING, files_done=i,
                                     files_total=n, current_file=f"tex/t_{i:05d}.png"))
    q.put(progress.ProgressEvent(phase=progress.Phase.DONE, files_done=n, files_total=n,
                                 message="all sent"))
    done = threading.Event()
    done.set()
    job = SimpleNamespace(events=q, done=done)
    answers, files_done = [], []
    for _ in range(10 * n):  # a bound far above the n + 1 ticks it should take
        answers.append(ops.poll(state(), job, budget_s=0.0))
        files_done.append(state().files_done)
        if answers[-1]:
            break
    return {"answers_false": answers.count(False), "last": answers[-1],
            "files_done_seen": files_done[:3] + files_done[-2:], "phase": state().phase,
            "status_line": state().status_line}


def sc_long_lists(args: dict[str, Any]) -> dict[str, Any]:
    link_extension()
    set_prefs({"server_url": args["server_url"]})
    open_blend(args["blend"])
    mods = ext()
    out: dict[str, Any] = {"headless_call": call_submit(dry_run=True), "headless": stored()}
    state().show_missing = True
    out["panel"] = draw_panel()
    out["interactive"] = interactive(mods, args["server_url"])
    history = mods["blender.prepare"].cache_dir() / "history.jsonl"
    records = [json.loads(line) for line in history.read_text("utf-8").splitlines()]
    out["history"] = [[m["path"] for m in r["missing"]] for r in records]
    out["history_file"] = str(history)
    out["long_queue"] = long_queue(mods, int(args.get("events", 1000)))
    return out


SCENARIOS = {"long_lists": sc_long_lists}

if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    emit(SCENARIOS[sys.argv[1]](json.loads(sys.argv[2])))
