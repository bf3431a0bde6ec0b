"""Blender-side helpers for the tests: ground truth, opening checkouts, rendering.

Each helper needs ``bpy`` and so runs in its own process::

    .venv/bin/python tests/blend_tools.py groundtruth MAIN.blend OUT.json
    .venv/bin/python tests/blend_tools.py inspect FILE.blend OUT.json
    .venv/bin/python tests/blend_tools.py render FILE.blend OUT.json

``groundtruth`` opens the main file AND every library it uses (at any depth) and records
what Blender itself reports: ``bpy.utils.blend_paths(absolute=True, local=False)`` of each
file, the library list, UDIM tiles and sequence frames expanded from disk.
``inspect`` opens one file and records the same for that file only, plus which IDs are
missing (``ID.is_missing``). ``render`` renders a small, deterministic Cycles image and
records a hash of its pixels. Test code calls them through ``run_tool()``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run_tool(command: str, blend: Path, tmp: Path, *extra: str) -> dict[str, Any]:
    """Run one helper in a fresh Python with bpy and return its JSON answer."""
    out = tmp / f"{command}-{os.getpid()}-{abs(hash(str(blend)))}.json"
    proc = subprocess.run(
        [
            os.environ.get("SHAMAN_BPY_PYTHON") or sys.executable,
            str(HERE / "blend_tools.py"),
            command,
            str(blend),
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"blend_tools {command} {blend} failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    data = json.loads(out.read_text("utf-8"))
    out.unlink()
    return data


# --------------------------------------------------------------------------- bpy side


def _expand(path: str) -> list[str]:
    """UDIM tiles and numbered frames that exist next to ``path``."""
    p = Path(path)
    if "<UDIM>" in p.name:
        pre, post = p.name.split("<UDIM>", 1)
        rx = re.compile(re.escape(pre) + r"\d{4}" + re.escape(post) + "$")
    else:
        m = re.match(r"^(.*?)(\d+)(\.[^.]*)?$", p.name)
        if not m:
            return [path] if p.exists() else []
        rx = re.compile(re.escape(m.group(1)) + r"\d+" + re.escape(m.group(3) or "") + "$")
    if not p.parent.is_dir():
        return []
    return sorted(str(p.parent / n) for n in os.listdir(p.parent) if rx.match(n))


def _file_report(bpy) -> dict[str, Any]:
    paths = set(bpy.utils.blend_paths(absolute=True, local=False))
    expanded: set[str] = set()
    for img in bpy.data.images:
        if img.library is not None or img.packed_file is not None:
            continue
        if img.source in {"TILED", "SEQUENCE"}:
            ap = os.path.normpath(bpy.path.abspath(img.filepath))
            paths.discard(ap)
            expanded.update(_expand(ap))
    for clip in bpy.data.movieclips:
        if clip.library is None and clip.source == "SEQUENCE":
            ap = os.path.normpath(bpy.path.abspath(clip.filepath))
            expanded.update(_expand(ap))
    for vol in bpy.data.volumes:
        if vol.library is None and vol.is_sequence and vol.packed_file is None:
            ap = os.path.normpath(bpy.path.abspath(vol.filepath))
            expanded.update(_expand(ap))
    for scene in bpy.data.scenes:
        if scene.library is not None or scene.sequence_editor is None:
            continue
        ed = scene.sequence_editor
        for strip in ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all:
            if strip.type == "IMAGE":
                d = bpy.path.abspath(strip.directory)
                for el in strip.elements:
                    expanded.add(os.path.normpath(os.path.join(d, el.filename)))
    libs = [os.path.normpath(bpy.path.abspath(lib.filepath)) for lib in bpy.data.libraries]
    all_paths = sorted({os.path.normpath(p) for p in paths} | expanded)
    missing_ids = [
        f"{type(idb).__name__}:{idb.name}"
        for coll in (
            bpy.data.objects,
            bpy.data.collections,
            bpy.data.materials,
            bpy.data.images,
            bpy.data.meshes,
            bpy.data.node_groups,
        )
        for idb in coll
        if idb.is_missing
    ]
    return {
        "filepath": bpy.data.filepath,
        "paths": all_paths,
        "libraries": libs,
        "missing_ids": missing_ids,
        "n_images": len(bpy.data.images),
    }


def _open(bpy, path: str) -> None:
    bpy.ops.wm.open_mainfile(filepath=path, load_ui=False)


def cmd_groundtruth(blend: str) -> dict[str, Any]:
    import bpy

    _open(bpy, blend)
    main = _file_report(bpy)
    todo = list(main["libraries"])
    per_file = {blend: main}
    seen: set[str] = set()
    while todo:
        lib = todo.pop(0)
        if lib in seen or not os.path.exists(lib):
            continue
        seen.add(lib)
        _open(bpy, lib)
        rep = _file_report(bpy)
        per_file[lib] = rep
        todo.extend(rep["libraries"])
    all_paths = sorted({p for rep in per_file.values() for p in rep["paths"]})
    return {"files": per_file, "all_paths": all_paths, "libraries": sorted(seen)}


def cmd_inspect(blend: str) -> dict[str, Any]:
    import bpy

    _open(bpy, blend)
    return _file_report(bpy)


def cmd_render(blend: str) -> dict[str, Any]:
    """64x64 Cycles on the CPU, 4 samples, seed 0, no sequencer or compositor."""
    import bpy

    _open(bpy, blend)
    scene = bpy.context.scene
    r = scene.render
    r.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 4
    scene.cycles.seed = 0
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    r.resolution_x = 64
    r.resolution_y = 64
    r.resolution_percentage = 100
    r.use_sequencer = False
    r.use_compositing = False
    r.image_settings.file_format = "OPEN_EXR"
    r.image_settings.color_depth = "32"
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"render-{os.getpid()}.exr"
    r.filepath = str(out)
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(str(out))
    import array

    px = array.array("f", [0.0]) * (len(img.pixels))
    img.pixels.foreach_get(px)
    out.unlink()
    data = px.tobytes()
    nonzero = sum(1 for v in px[::4] if v > 0.0)
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "n_values": len(px),
        "nonblack_pixels": nonzero,
        "mean": sum(px) / max(len(px), 1),
    }


def main() -> int:
    command, blend, out = sys.argv[1:4]
    func = {"groundtruth": cmd_groundtruth, "inspect": cmd_inspect, "render": cmd_render}[command]
    result = func(blend)
    Path(out).write_text(json.dumps(result, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
