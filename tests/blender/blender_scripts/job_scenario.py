"""Render-job scenarios of the Blender layer, each run in a fresh ``bpy`` process.

    python job_scenario.py NAME '{"json": "arguments"}'

Like ``scenario.py``: the repository is linked as the ``user_default`` extension and
enabled; the local server runs in the test's process, reached over loopback (its
knobs through ``POST /test/fault``, its counters through ``GET /test/counters``). Each
scenario prints ``RESULT {json}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy
from _harness import MODULE, emit, link_extension, open_blend, prefs, state


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def server_call(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as answer:
        text = answer.read().decode()
    return json.loads(text) if text.strip() else None


def uploads(url: str) -> int:
    return int(server_call(url, "/test/counters")["requests"].get("upload", 0))


def mod(name: str) -> Any:
    import importlib

    return importlib.import_module(f"{MODULE}.shaman_addon.{name}")


# -- a recording layout that keeps what matters of a draw ---------------------------------


class Recorder:
    """Stands in for ``UILayout``: every label, prop and operator drawn, in order, with
    whether it is greyed (``enabled`` False on it or any parent layout)."""

    def __init__(self, out: list[dict[str, Any]], parent: Recorder | None = None) -> None:
        object.__setattr__(self, "_out", out)
        object.__setattr__(self, "_parent", parent)
        object.__setattr__(self, "enabled", True)

    def _enabled(self) -> bool:
        node: Recorder | None = self
        while node is not None:
            if not node.enabled:
                return False
            node = node._parent
        return True

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        icons = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"]
                    .enum_items.keys())

        def call(*a: Any, **kw: Any) -> Any:
            icon = kw.get("icon")
            if icon is not None and icon not in icons:
                raise TypeError(f"{name}(): this Blender has no icon {icon!r}")
            entry: dict[str, Any] = {"kind": name, "text": kw.get("text"), "icon": icon,
                                     "enabled": self._enabled()}
            if name == "label":
                self._out.append(entry)
            elif name == "prop":
                data, prop = a[0], a[1]
                if prop not in data.bl_rna.properties:
                    raise AttributeError(f"prop(): {type(data).__name__} has no {prop!r}")
                entry.update(prop=prop, owner=type(data).__name__)
                self._out.append(entry)
            elif name == "operator":
                entry.update(op=a[0])
                self._out.append(entry)
                props = type("OpProps", (), {})()
                entry["props"] = props.__dict__  # filled by the caller's assignments
                return props
            elif name == "progress":
                self._out.append(entry)
            return Recorder(self._out, self)

        return call


def draw_panel() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cls = bpy.types.SHAMAN_PT_render
    fake = type("P", (), {"layout": Recorder(out),
                          "_draw_result": staticmethod(cls._draw_result),
                          "_draw_running": staticmethod(cls._draw_running)})()
    cls.draw(fake, bpy.context)
    return [{**e, "props": dict(e.get("props", {}))} if "props" in e else e for e in out]


def rna_of(group: Any) -> dict[str, Any]:
    """The generated properties as Blender sees them."""
    out = {}
    for p in group.bl_rna.properties:
        if p.identifier in ("rna_type", "name"):
            continue
        info: dict[str, Any] = {"type": p.type, "subtype": p.subtype, "name": p.name}
        if p.type in ("INT", "FLOAT"):
            info.update(min=p.hard_min, max=p.hard_max, default=p.default)
        if p.type == "ENUM":
            info.update(items=[i.identifier for i in p.enum_items], default=p.default)
        if p.type in ("STRING", "BOOLEAN"):
            info.update(default=p.default)
        out[p.identifier] = info
    return out


def call(fn: Any, *a: Any, **kw: Any) -> dict[str, Any]:
    try:
        ret = fn(*a, **kw)
    except RuntimeError as exc:
        return {"raised": True, "error": str(exc), "ret": None}
    return {"raised": False, "error": "", "ret": sorted(ret)}


def enum_identifiers(data: Any, prop: str) -> list[str]:
    """A dynamic enum's items as Blender offers them (its refusal of an unknown value
    lists them: RNA gives no items of a dynamic enum without a context)."""
    import ast

    try:
        setattr(data, prop, "\x01 not an item")
    except TypeError as exc:
        return list(ast.literal_eval(str(exc).rsplit(" not found in ", 1)[1]))
    raise AssertionError(f"{prop} took a value that is not an item")


def job_props() -> Any:
    return bpy.context.window_manager.shaman_job


def group_for(name: str) -> Any:
    gen = mod("blender.job_props").generated()[name]
    return gen, getattr(bpy.context.window_manager, gen.attr)


def memory_file() -> Path:
    return mod("blender.job_choice").memory().path


# -- scenarios ----------------------------------------------------------------------------


def sc_panel(args: dict[str, Any]) -> dict[str, Any]:
    """The Render job section from no job types to a submitted job, in one process."""
    url, custom = args["url"], args["custom"]
    link_extension()
    prefs().server_url = url
    blend = Path(args["blend"])
    sha_before, mtime_before = sha256(blend), blend.stat().st_mtime_ns
    open_blend(blend)
    other = Path(args["other_blend"])
    if not other.exists():  # a second file, saved before anything is remembered
        bpy.ops.wm.save_as_mainfile(filepath=str(other), copy=True)
    res: dict[str, Any] = {"before_refresh": draw_panel()}
    res["refresh"] = call(bpy.ops.shaman.refresh_job_types)
    res["menu"] = enum_identifiers(job_props(), "job_type")
    res["tags"] = enum_identifiers(job_props(), "worker_tag")
    res["none_drawn"] = draw_panel()
    job_props().job_type = custom
    gen, group = group_for(custom)
    res["names"] = dict(gen.names)
    res["rna"] = rna_of(group)
    asked = sum(server_call(url, "/test/counters")["requests"].values())
    res["custom_drawn"] = draw_panel()
    for _ in range(3):
        draw_panel()
    res["requests_while_drawing"] = (
        sum(server_call(url, "/test/counters")["requests"].values()) - asked)
    # open the lock of each link-button setting and type a value; set the others
    for key, value in args["values"].items():
        name = gen.names[key]
        lock = "lock" + name[1:]
        if hasattr(group, lock):
            setattr(group, lock, False)
        setattr(group, name, value)
    job_props().priority = 77
    job_props().worker_tag = args["tag"]
    res["unlocked_drawn"] = draw_panel()
    res["choice"] = _choice_json()
    res["memory_after_edit"] = json.loads(memory_file().read_text())
    # another file starts from the defaults; the first one gets its choice back
    open_blend(args["other_blend"])
    res["other_choice"] = _choice_json()
    open_blend(blend)
    res["restored_choice"] = _choice_json()
    # an edit of the job type on the Manager: a new etag, the group generated again
    server_call(url, "/test/fault", {"call": "bump_etag", "kwargs": {"name": custom}})
    old_cls = gen.cls.__name__
    res["refresh2"] = call(bpy.ops.shaman.refresh_job_types)
    gen2, _group2 = group_for(custom)
    res["regenerated"] = gen2.cls.__name__ != old_cls
    res["etag_after"] = gen2.job_type.etag
    res["choice_after_regeneration"] = _choice_json()
    res["artist_file_unchanged"] = (sha256(blend) == sha_before
                                    and blend.stat().st_mtime_ns == mtime_before)
    res.update(_submit_from_panel(args))
    return res


def _choice_json() -> dict[str, Any]:
    choice = mod("blender.job_choice").panel_choice(bpy.context)
    return {"job_type": choice.job_type, "name": choice.name, "priority": choice.priority,
            "worker_tag": choice.worker_tag, "paused": choice.paused,
            "given": dict(choice.given)}


def _submit_from_panel(args: dict[str, Any]) -> dict[str, Any]:
    """The stock job type chosen in the panel, submitted as a click does."""
    job_props().job_type = args["simple"]
    job_props().worker_tag = "__any__"
    job_props().paused = True
    _gen, group = group_for(args["simple"])
    group.v_render_output_root = args["render_output_root"]
    drawn = draw_panel()
    before_submit = _choice_json()
    url = args["url"]
    # what the panel's Submit button runs (background Blender calls execute, not invoke)
    # 1. a frame range the Manager refuses: its words, nothing uploaded
    group.lock_frames = False
    group.v_frames = "one to ten"
    before = uploads(url)
    refused = call(bpy.ops.shaman.submit, use_panel_choice=True)
    refused.update(uploads=uploads(url) - before, drawn=draw_panel())
    group.lock_frames = True
    # 2. the job refused after the checkout: the checkout is kept, and said where
    server_call(url, "/test/fault", {"call": "fail_next", "kwargs": {
        "endpoint": "jobs_submit", "status": 400, "message": "injected refusal"}})
    kept = call(bpy.ops.shaman.submit, use_panel_choice=True)
    kept.update(kept_checkout=state().kept_checkout, drawn=draw_panel())
    # 3. the job submitted
    submitted = call(bpy.ops.shaman.submit, use_panel_choice=True)
    st = state()
    return {
        "simple_drawn": drawn,
        "choice_before_submit": before_submit,
        "refused": refused,
        "kept": kept,
        "submit": submitted,
        "job_state": {k: getattr(st, k) for k in (
            "result_ok", "error", "job_id", "job_name", "job_status", "job_url", "job_text",
            "checkout_path")},
        "result_drawn": draw_panel(),
        "scene": {"frame_start": bpy.context.scene.frame_start,
                  "frame_end": bpy.context.scene.frame_end},
    }


def sc_headless(args: dict[str, Any]) -> dict[str, Any]:
    """Scripted submissions with a render job: refusals first (counting uploads around
    each), then the one that works; and what Blender itself reads from the scene."""
    url = args["url"]
    link_extension()
    prefs().server_url = url
    open_blend(args["blend"])
    out: dict[str, Any] = {"refused": {}}
    for label, kwargs in args["refusals"].items():
        before = uploads(url)
        result = call(bpy.ops.shaman.submit, **kwargs)
        result["uploads"] = uploads(url) - before
        result["state_error"] = state().error
        out["refused"][label] = result
    out["ok"] = call(bpy.ops.shaman.submit, **args["ok"])
    st = state()
    out["job_state"] = {k: getattr(st, k) for k in (
        "result_ok", "error", "job_id", "job_status", "job_url", "checkout_path",
        "worker_path")}
    scene = bpy.context.scene
    render = scene.render
    out["blender"] = {  # Blender's own reading of the scene, no expression involved
        "frames": f"{scene.frame_start}-{scene.frame_end}",
        "fps": render.fps / render.fps_base,
        "format": render.image_settings.file_format,
        "image_file_extension": render.file_extension,
        "has_previews": bool(render.image_settings.use_preview),
        "scene": scene.name,
        "blend_dir": str(Path(bpy.data.filepath).parent),
    }
    return out


SCENARIOS = {name[3:]: fn for name, fn in globals().items() if name.startswith("sc_")}


def main() -> int:
    name = sys.argv[1]
    args = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    emit(SCENARIOS[name](args))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
