"""Blender's own evaluation of job settings, the reference for the command line's.

Run as a script (it imports ``bpy``, so in its own process)::

    .venv/bin/python tests/jobs/scene_productions.py OUTDIR JOB_TYPES.json

In ONE process it writes several productions (``OUTDIR/<name>/...``: different frame
ranges, fps / fps_base, image formats and a movie format, previews on and off, several
scenes with the current one not the first), and one small file per image format
Blender offers (``OUTDIR/formats/<FORMAT>.blend``). Then it opens each file as Blender
would and, with ``evaluate_settings(context=bpy.context, bpy_module=bpy, ...)``,
evaluates every setting of every job type in JOB_TYPES.json; it also records what
``bpy.context`` says for each attribute ``scene_blend`` knows. All of it goes to
``OUTDIR/blender.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import bpy

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from shaman_addon.jobs.expressions import evaluate_settings  # noqa: E402
from shaman_addon.jobs.types import parse_job_types  # noqa: E402

JOBNAME = "lighting v2"
ATTRIBUTES = (
    "scene.name", "scene.frame_start", "scene.frame_end", "scene.frame_step",
    "scene.frame_current", "scene.render.fps", "scene.render.fps_base",
    "scene.render.file_extension", "scene.render.filepath",
    "scene.render.resolution_x", "scene.render.resolution_y",
    "scene.render.resolution_percentage", "scene.render.image_settings.file_format",
    "scene.render.image_settings.use_preview",
)
# Values a person gives (the stock types' settings without eval nor default).
GIVEN = {
    "simple-blender-render": [{"render_output_root": "//render/"},
                              {"render_output_root": "/farm/out", "add_path_components": 2,
                               "chunk_size": 5}],
    "echo-sleep-test": [{"message": "hello"}],
}
# name -> (folder of the main file, scenes: (name, start, end, fps, fps_base, format,
#          preview, step), the current scene's index)
PRODUCTIONS: dict[str, tuple[str, list[tuple[Any, ...]], int]] = {
    "defaults": ("shots/main.blend", [], 0),
    "jpeg_ntsc": ("film/sq010/sh020/anim.blend",
                  [("Shot", 10, 47, 30, 1.001, "JPEG", True, 1)], 0),
    "exr_current_not_first": ("a/b/lighting.blend",
                              [("Alpha", 1, 20, 24, 1.0, "PNG", False, 1),
                               ("Beta ü", 101, 148, 25, 1.0, "OPEN_EXR", True, 2),
                               ("Gamma", 5, 6, 60, 2.0, "JPEG", False, 1)], 1),
    "png_preview_last": ("x/y.blend",
                         [("One", 1, 2, 24, 1.0, "JPEG", False, 1),
                          ("Two", 0, 300, 50, 1.0, "PNG", True, 3)], 1),
    "movie": ("edit/cut.blend", [("Edit", 1, 120, 24, 1.001, "FFMPEG", False, 1)], 0),
}


def _set_format(image_settings: Any, file_format: str) -> None:
    if file_format == "FFMPEG" and hasattr(image_settings, "media_type"):
        image_settings.media_type = "VIDEO"  # Blender 5: movie formats are a media type
    image_settings.file_format = file_format


def make_production(path: Path, scenes: list[tuple[Any, ...]], current: int) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    made = []
    for i, (name, start, end, fps, base, fmt, preview, step) in enumerate(scenes):
        scene = bpy.context.scene if i == 0 else bpy.data.scenes.new(name)
        scene.name = name
        scene.frame_start, scene.frame_end, scene.frame_step = start, end, step
        scene.render.fps, scene.render.fps_base = fps, base
        _set_format(scene.render.image_settings, fmt)
        scene.render.image_settings.use_preview = preview
        made.append(scene)
    if made:
        bpy.context.window_manager.windows[0].scene = made[current]
    path.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=not path.name.startswith("main"))


def format_files(outdir: Path) -> list[Path]:
    """One file per image format (and media type) Blender offers."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    settings = bpy.context.scene.render.image_settings
    media = ([m.identifier for m in settings.bl_rna.properties["media_type"].enum_items]
             if hasattr(settings, "media_type") else [None])
    paths: list[Path] = []
    (outdir / "formats").mkdir(parents=True, exist_ok=True)
    for media_type in media:
        if media_type is not None:
            settings.media_type = media_type
        for item in settings.bl_rna.properties["file_format"].enum_items:
            try:
                settings.file_format = item.identifier
            except TypeError:  # Blender 5: not a format of this media type
                continue
            codecs = ["JP2", "J2K"] if item.identifier == "JPEG2000" else [None]
            for codec in codecs:
                if codec is not None:
                    settings.jpeg2k_codec = codec
                name = "-".join(n for n in (media_type, item.identifier, codec) if n)
                paths.append(outdir / "formats" / f"{name}.blend")
                bpy.ops.wm.save_as_mainfile(filepath=str(paths[-1]), copy=True)
    return paths


def _attribute(path: str) -> Any:
    value: Any = bpy.context
    for name in path.split("."):
        value = getattr(value, name)
    return value


def evaluate(path: Path, job_types: Any) -> dict[str, Any]:
    bpy.ops.wm.open_mainfile(filepath=str(path))
    blendfile = Path(bpy.data.filepath)
    from shaman_addon.jobs.expressions import blender_abspath

    found: dict[str, Any] = {
        "blendfile": str(blendfile),
        "attributes": {a: _attribute(a) for a in ATTRIBUTES},
        "abspath": [blender_abspath(blendfile)(p) == bpy.path.abspath(p)
                    for p in ("//render/", "//", "/abs/x", "rel/y", "//../up")],
        "settings": {},
    }
    for job_type in job_types:
        found["settings"][job_type.name] = [
            {"given": given, "jobname": JOBNAME,
             "values": evaluate_settings(job_type, context=bpy.context, bpy_module=bpy,
                                         jobname=JOBNAME, blendfile=blendfile, given=given)}
            for given in GIVEN[job_type.name]
        ]
    return found


def main() -> None:
    outdir, types_file = Path(sys.argv[1]), Path(sys.argv[2])
    job_types = parse_job_types(json.loads(types_file.read_text()), url="stock")
    files = {}
    for name, (where, scenes, current) in PRODUCTIONS.items():
        files[name] = outdir / name / where
        make_production(files[name], scenes, current)
    for path in format_files(outdir):
        files[f"formats/{path.stem}"] = path
    result = {name: evaluate(path, job_types) for name, path in files.items()}
    (outdir / "blender.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
