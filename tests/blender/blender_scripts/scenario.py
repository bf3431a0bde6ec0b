"""Scenarios of the Blender layer, each run in a fresh ``bpy`` process by the tests.

    python scenario.py NAME '{"json": "arguments"}'

The repository is linked as the ``user_default`` extension of a throw-away user folder
(``BLENDER_USER_RESOURCES``) and enabled. Each scenario prints ``RESULT {json}``: the
tests assert on what really happened (files on disk, the property group, reports).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import queue
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy
from _harness import (
    MODULE,
    add_image,
    emit,
    link_extension,
    open_blend,
    our_handlers,
    prefs,
    shaman_threads,
    state,
)


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def ext() -> Any:
    """The enabled extension's modules (imported as Blender imports them)."""
    base = sys.modules[MODULE + ".shaman_addon"]
    import importlib

    return {
        name: importlib.import_module(f"{base.__name__}.{name}")
        for name in ("blender.prepare", "blender.submit_ops", "blender.job",
                     "blender.tempcopies", "app.progress_view", "progress", "blender.properties",
                     "blender.preferences")
    }


def set_prefs(values: dict[str, Any]) -> None:
    p = prefs()
    for key, value in values.items():
        setattr(p, key, value)


def state_dict() -> dict[str, Any]:
    st = state()
    out = {
        name: getattr(st, name)
        for name in (
            "running", "phase", "fraction", "files_done", "files_total", "bytes_text",
            "bar_text", "status_line", "message", "has_result", "result_ok", "result_dry_run",
            "error", "checkout_path", "worker_path", "total_text", "uploaded_text",
            "stored_text", "warnings_text", "server_check_text", "server_check_ok",
        )
    }
    out["missing"] = [{"path": m.path, "referenced_by": m.referenced_by} for m in st.missing]
    return out


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".shaman"))


def ledger_lines() -> list[str]:
    mods = ext()
    path = mods["blender.prepare"].ledger().path
    return path.read_text().splitlines() if path.exists() else []


def call_submit(**op: Any) -> dict[str, Any]:
    try:
        ret = bpy.ops.shaman.submit(**op)
    except RuntimeError as exc:
        return {"raised": True, "error": str(exc), "ret": None}
    return {"raised": False, "error": "", "ret": sorted(ret)}


# -- scenarios ----------------------------------------------------------------------------


def sc_submit(args: dict[str, Any]) -> dict[str, Any]:
    """Open a file (optionally add an image: unsaved change), submit with execute()."""
    link_extension()
    set_prefs(args.get("prefs", {}))
    if "online_access" in args:
        bpy.context.preferences.system.use_online_access = args["online_access"]
    blend = Path(args["blend"])
    open_blend(blend)
    if args.get("render_output") is not None:
        bpy.context.scene.render.filepath = args["render_output"]
    saves: list[str] = []

    def on_save(*a: Any) -> None:
        saves.append(a[0] if a and isinstance(a[0], str) else "?")

    bpy.app.handlers.save_pre.append(on_save)
    before = sha256(blend)
    mtime_before = blend.stat().st_mtime_ns
    new_image = args.get("dirty_image")
    if new_image:
        add_image(Path(new_image), rgb=(10, 200, 10))
    dirty_before = bpy.data.is_dirty
    # watch for the temporary copy while the submission runs
    call = call_submit(**args.get("op", {}))
    bpy.app.handlers.save_pre.remove(on_save)
    return {
        **call,
        "state": state_dict(),
        "blend_sha_before": before,
        "blend_sha_after": sha256(blend),
        "blend_mtime_same": blend.stat().st_mtime_ns == mtime_before,
        "dirty_before": dirty_before,
        "dirty_after": bpy.data.is_dirty,
        "saves": saves,
        "hidden_after": hidden_files(blend.parent),
        "ledger": ledger_lines(),
        "threads": shaman_threads(),
        "filepath_after": bpy.data.filepath,
    }


def sc_untitled(args: dict[str, Any]) -> dict[str, Any]:
    link_extension()
    set_prefs(args.get("prefs", {}))
    bpy.ops.wm.read_homefile(use_empty=True)
    return {**call_submit(), "state": state_dict(), "filepath": bpy.data.filepath}


def sc_policy(args: dict[str, Any]) -> dict[str, Any]:
    """Online access off/on: which URLs the layer accepts (no request is sent)."""
    link_extension()
    mods = ext()
    prepare = mods["blender.prepare"]
    settings = mods["blender.preferences"].read()
    out: dict[str, Any] = {"app_online_access": {}, "decisions": {}}
    for online in (False, True):
        bpy.context.preferences.system.use_online_access = online
        out["app_online_access"][str(online)] = bool(bpy.app.online_access)
        for url in args["urls"]:
            try:
                prepare.resolve_server_url(url, settings)
            except Exception as exc:
                out["decisions"][f"{online}|{url}"] = {"allowed": False, "error": str(exc),
                                                      "type": type(exc).__name__}
            else:
                out["decisions"][f"{online}|{url}"] = {"allowed": True}
    bpy.context.preferences.system.use_online_access = False
    open_blend(args["blend"])
    out["submit_public"] = call_submit(server_url=args["public_url"])
    out["state"] = state_dict()
    return out


def _start_ui_job(args: dict[str, Any]) -> tuple[Any, Any]:
    """What invoke() does, minus the event loop (background mode has none)."""
    mods = ext()
    ops = mods["blender.submit_ops"]
    job, _warnings = mods["blender.prepare"].prepare_job(
        bpy.context, server_url=args.get("server_url", ""), background=False
    )
    ops.begin(state(), job)
    job.start()
    return ops, job


def _tick_until(ops: Any, job: Any, predicate: Any, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished = ops.poll(state(), job)
        if predicate() or finished:
            return predicate()
        time.sleep(0.02)
    return False


def sc_cancel(args: dict[str, Any]) -> dict[str, Any]:
    """Start as the UI does, wait for the upload phase, try a second submit, cancel."""
    link_extension()
    set_prefs(args.get("prefs", {}))
    blend = Path(args["blend"])
    open_blend(blend)
    if args.get("dirty_image"):
        add_image(Path(args["dirty_image"]))
    ops, job = _start_ui_job(args)
    reached = _tick_until(ops, job, lambda: state().phase == "uploading")
    temp_during = hidden_files(blend.parent)
    panel_running = draw_panel()
    second = call_submit()
    phases_seen = state().phase
    cancel_ret = sorted(bpy.ops.shaman.cancel())
    t0 = time.monotonic()
    _tick_until(ops, job, lambda: job.done.is_set(), timeout=120)
    ops.poll(state(), job)
    outcome = ops.finish(state(), job)
    return {
        "reached_uploading": reached,
        "panel_running": panel_running,
        "panel_after": draw_panel(),
        "phase_when_cancelled": phases_seen,
        "temp_during": temp_during,
        "second_submit": second,
        "cancel_ret": cancel_ret,
        "cancel_seconds": time.monotonic() - t0,
        "outcome": {"ok": outcome.error is None, "cancelled": outcome.cancelled,
                    "error": outcome.message, "error_type": type(outcome.error).__name__},
        "state": state_dict(),
        "hidden_after": hidden_files(blend.parent),
        "ledger": ledger_lines(),
        "active_after": mods_active(),
        "threads": shaman_threads(),
    }


def mods_active() -> bool:
    return ext()["blender.job"].active() is not None


def sc_load_cancels(args: dict[str, Any]) -> dict[str, Any]:
    """Opening another file during a submission cancels it (persistent load_pre)."""
    link_extension()
    set_prefs(args.get("prefs", {}))
    blend = Path(args["blend"])
    open_blend(blend)
    if args.get("dirty_image"):
        add_image(Path(args["dirty_image"]))
    ops, job = _start_ui_job(args)
    reached = _tick_until(ops, job, lambda: state().phase == "uploading")
    temp_during = hidden_files(blend.parent)
    open_blend(args["other_blend"])
    finished = job.join(60)
    return {
        "reached_uploading": reached,
        "temp_during": temp_during,
        "finished": finished,
        "outcome": {"cancelled": job.outcome.cancelled, "error": job.outcome.message},
        "hidden_after": hidden_files(blend.parent),
        "ledger": ledger_lines(),
        "handlers": our_handlers(),
        "state_running_after_load": state().running,
        "state_error_after_load": state().error,
        "threads": shaman_threads(),
        "filepath": bpy.data.filepath,
    }


def sc_unregister_running(args: dict[str, Any]) -> dict[str, Any]:
    """Disable the add-on while a submission runs: everything goes, the worker stops."""
    import addon_utils

    link_extension()
    set_prefs(args.get("prefs", {}))
    open_blend(args["blend"])
    ops, job = _start_ui_job(args)
    reached = _tick_until(ops, job, lambda: state().phase == "uploading")
    handlers_before = our_handlers()
    addon_utils.disable(MODULE, default_set=True, handle_error=_raise)
    return {
        "reached_uploading": reached,
        "handlers_before": handlers_before,
        "handlers_after": our_handlers(),
        "job_done": job.done.is_set(),
        "outcome_cancelled": job.done.is_set() and job.outcome.cancelled,
        "timer": job.timer is not None,
        "threads": shaman_threads(),
        "wm_has_state": hasattr(bpy.types.WindowManager, "shaman"),
        "has_submit_op": hasattr(bpy.types, "SHAMAN_OT_submit"),
        "has_panel": hasattr(bpy.types, "SHAMAN_PT_render"),
        "enabled": MODULE in bpy.context.preferences.addons,
    }


def _raise(exc: BaseException) -> None:
    raise exc


def sc_drain(args: dict[str, Any]) -> dict[str, Any]:
    """10,000 queued events into the REAL property group through the tick function."""
    link_extension()
    mods = ext()
    progress, progress_view = mods["progress"], mods["app.progress_view"]
    q: queue.SimpleQueue = queue.SimpleQueue()
    n = int(args.get("events", 10_000))
    total = 5_000_000_000  # > 2**31: byte counts must survive the 32-bit IntProperty
    events = []
    for i in range(n):
        phase = progress.Phase.HASHING if i < n // 2 else progress.Phase.UPLOADING
        ev = progress.ProgressEvent(
            phase=phase, files_done=i, files_total=n, hash_bytes_done=min(total, i * 600_000),
            hash_bytes_total=total, upload_bytes_done=i * 500_000, upload_bytes_total=total,
            current_file=f"textures/t_{i:05d}.png", speed_bps=1e6 + i, eta_s=float(n - i),
            message=f"event {i}",
        )
        events.append(ev)
        q.put(ev)
    now = [0.0]
    step = float(args.get("step", 1.0))
    budget = float(args.get("budget", 40.0))

    def clock() -> float:
        now[0] += step
        return now[0]

    st = state()
    reports = []  # (the event applied, the time the tick took by the clock)
    reads: list[float] = []  # the clock's readings in the current tick

    def watched() -> float:
        reads.append(clock())
        return reads[-1]

    while True:
        reads.clear()
        applied = progress_view.tick(q, st, budget_s=budget, clock=watched)
        if applied is None:
            break
        reports.append((applied, reads[-1] - reads[0]))
    expected = dataclasses.asdict(progress_view.ProgressView.of(events[-1]))
    actual = {k: getattr(st, k) for k in expected}
    return {
        "ticks": len(reports),
        "max_elapsed": max(elapsed for _applied, elapsed in reports),
        "budget": budget,
        "expected": expected,
        "actual": actual,
        "last_applied_is_last": reports[-1][0] == events[-1],
    }


def sc_prefs_write(args: dict[str, Any]) -> dict[str, Any]:
    link_extension()
    defaults = {k: getattr(prefs(), k) for k in args["values"]}
    set_prefs(args["values"])
    bpy.ops.wm.save_userpref()
    return {"defaults": defaults}


def sc_prefs_read(args: dict[str, Any]) -> dict[str, Any]:
    # A Blender start reads the saved preferences, which enable the extension again
    # (the bpy module starts from factory settings, so it is asked to).
    bpy.ops.wm.read_userpref()
    enabled_by_userpref = MODULE in bpy.context.preferences.addons
    link_extension()
    p = prefs()
    mods = ext()
    settings = mods["blender.preferences"].read()
    return {
        "enabled_by_userpref": enabled_by_userpref,
        "values": {k: getattr(p, k) for k in args["keys"]},
        "settings": {k: str(v) for k, v in vars(settings).items()},
    }


def sc_leftovers(args: dict[str, Any]) -> dict[str, Any]:
    """Temporary copies a crash left: removed at the next start, live ones kept."""
    import addon_utils

    link_extension()  # first start: creates the ledger's folder
    mods = ext()
    ledger = mods["blender.prepare"].ledger()
    addon_utils.disable(MODULE, default_set=True)
    for line in args["ledger"]:
        ledger.add(Path(line))
    link_extension()  # "the next start"
    return {
        "exists": {p: Path(p).exists() for p in args["check"]},
        "ledger": ledger_lines(),
    }


def sc_check_server(args: dict[str, Any]) -> dict[str, Any]:
    link_extension()
    out = {}
    for url in args["urls"]:
        try:
            ret = sorted(bpy.ops.shaman.check_server(server_url=url))
            err = ""
        except RuntimeError as exc:
            ret, err = [], str(exc)
        out[url] = {"ret": ret, "error": err, "text": state().server_check_text,
                    "ok": state().server_check_ok}
    return out


def sc_headless(args: dict[str, Any]) -> dict[str, Any]:
    """``blender --background FILE --python-expr EXPR --python-exit-code 1``: the
    expression runs with the file open; an uncaught exception ends the process with
    code 1 (the exception propagates out of this script)."""
    link_extension()
    set_prefs(args.get("prefs", {}))
    open_blend(args["blend"])
    exec(compile(args["expr"], "<python-expr>", "exec"), {})
    return {"state": state_dict()}


def sc_resubmit(args: dict[str, Any]) -> dict[str, Any]:
    """Open a file, change the scene in the script (``frame_end``), then submit ``times``
    times with the operator's defaults (headless: ``AUTO``), noting each result."""
    link_extension()
    set_prefs(args.get("prefs", {}))
    open_blend(Path(args["blend"]))
    if args.get("frame_end"):
        bpy.context.scene.frame_end = args["frame_end"]
    runs = []
    for _ in range(args.get("times", 1)):
        call = call_submit(**args.get("op", {}))
        runs.append({**call, "state": state_dict()})
    return {"runs": runs, "hidden_after": hidden_files(Path(args["blend"]).parent)}


def sc_frame_end(args: dict[str, Any]) -> dict[str, Any]:
    open_blend(Path(args["blend"]))
    return {"frame_end": bpy.context.scene.frame_end}


def draw_panel(prefs_too: bool = False) -> list[str]:
    """Run the panel's real ``draw()`` against a recording layout (background mode has
    no screen to draw on) and return the texts it would show."""
    labels: list[str] = []
    label_fn = bpy.types.UILayout.bl_rna.functions["label"]
    known_icons = set(label_fn.parameters["icon"].enum_items.keys())

    class Layout:
        def __getattr__(self, name: str) -> Any:
            def call(*a: Any, **kw: Any) -> Any:
                icon = kw.get("icon")
                if icon is not None and icon not in known_icons:
                    raise TypeError(f"{name}(): this Blender has no icon {icon!r}")
                if name == "label":
                    labels.append(kw.get("text", ""))
                elif name == "progress":
                    labels.append("progress:" + kw.get("text", ""))
                elif name == "operator":
                    labels.append("op:" + a[0] + ":" + kw.get("text", ""))
                    return type("Props", (), {})()
                elif name == "prop":
                    labels.append("prop:" + a[1] + ":" + kw.get("text", ""))
                return self

            return call

        def __setattr__(self, name: str, value: Any) -> None:
            pass

    if prefs_too:
        real = prefs()
        fake_prefs = type(
            "Prefs", (), {"layout": Layout(), "__getattr__": lambda self, n: getattr(real, n)}
        )()
        type(real).draw(fake_prefs, bpy.context)
        return labels
    cls = bpy.types.SHAMAN_PT_render
    fake_panel = type(
        "P",
        (),
        {
            "layout": Layout(),
            "_draw_result": staticmethod(cls._draw_result),
            "_draw_running": staticmethod(cls._draw_running),
        },
    )()
    cls.draw(fake_panel, bpy.context)
    return labels


def sc_panel(args: dict[str, Any]) -> dict[str, Any]:
    link_extension()
    set_prefs(args.get("prefs", {}))
    open_blend(args["blend"])
    if args.get("render_output") is not None:
        bpy.context.scene.render.filepath = args["render_output"]
    before = draw_panel()
    call = call_submit(**args.get("op", {})) if args.get("submit") else {}
    state().show_missing = bool(args.get("show_missing"))
    return {
        "before": before,
        "after": draw_panel(),
        "prefs": draw_panel(prefs_too=True),
        "call": call,
        "state": state_dict(),
    }


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}


def main() -> int:
    name = sys.argv[1]
    args = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    emit(SCENARIOS[name](args))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
