"""A stand-in for Blender's ``bpy.context``, read from the .blend itself with BAT: what the
command line evaluates a job type's expressions against, without Blender.

It knows the scene Blender makes current when it opens the file (the one the file was
saved with: ``FileGlobal.curscene``, else the first scene) and, of that scene, what the
stock job types read and a little more::

    C.scene.name, frame_start, frame_end, frame_step, frame_current
    C.scene.render.fps, fps_base, file_extension, filepath,
                   resolution_x, resolution_y, resolution_percentage
    C.scene.render.image_settings.file_format, use_preview

Anything else raises ``NotKnownWithoutBlender`` (an AttributeError), which
``evaluate_settings`` turns into ``SettingNotComputable`` naming the ``--set`` that
supplies the value. Blender's own evaluation is the reference: the tests evaluate every
stock setting in Blender and from this module on the same files and compare.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..collect.bat_blendfile import open_blendfile
from ..errors import BlendFileError, NotKnownWithoutBlender, ShamanError
from .expressions import evaluate_settings
from .types import JobType

# ImageFormatData.imtype -> RNA's file_format identifier and the render's file_extension,
# as Blender reports them (a movie's is ".png": Blender's own answer, kept).
_IMAGE_TYPES: dict[int, tuple[str, str]] = {
    0: ("TARGA", ".tga"),
    1: ("IRIS", ".rgb"),
    4: ("JPEG", ".jpg"),
    14: ("TARGA_RAW", ".tga"),
    17: ("PNG", ".png"),
    20: ("BMP", ".bmp"),
    21: ("HDR", ".hdr"),
    22: ("TIFF", ".tif"),
    23: ("OPEN_EXR", ".exr"),
    24: ("FFMPEG", ".png"),
    26: ("CINEON", ".cin"),
    27: ("DPX", ".dpx"),
    28: ("OPEN_EXR_MULTILAYER", ".exr"),
    30: ("JPEG2000", ".jp2"),
    35: ("WEBP", ".webp"),
}
_JP2_CODEC_J2K = 1
_IMF_FLAG_PREVIEW_JPG = 1 << 1
SCENE_FIELDS = ("name", "frame_start", "frame_end", "frame_step", "frame_current")
RENDER_FIELDS = ("fps", "fps_base", "file_extension", "filepath", "resolution_x",
                 "resolution_y", "resolution_percentage")
IMAGE_FIELDS = ("file_format", "use_preview")
KNOWN_NAMES = frozenset(
    ["C", "C.scene", "C.scene.render", "C.scene.render.image_settings"]
    + [f"C.scene.{f}" for f in SCENE_FIELDS]
    + [f"C.scene.render.{f}" for f in RENDER_FIELDS]
    + [f"C.scene.render.image_settings.{f}" for f in IMAGE_FIELDS])
"""Everything of ``C`` this module reads from a .blend, as an expression names it."""


class Known:
    """Attributes read from the file; any other one is not known without Blender."""

    __slots__ = ("_path", "_values")

    def __init__(self, path: str, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise NotKnownWithoutBlender(f"{object.__getattribute__(self, '_path')}.{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._path} is read from the .blend and cannot be changed")

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_path')} read from the .blend>"


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _current_scene(bfile: Any) -> Any:
    """The scene Blender makes current on opening: the file's ``curscene``, else the
    first scene."""
    for glob in bfile.find_blocks_from_code(b"GLOB"):
        scene = glob.get_pointer(b"curscene", default=None)
        if scene is not None and scene.code == b"SC":
            return scene
    scenes = bfile.find_blocks_from_code(b"SC")
    if not scenes:
        raise ValueError("the file holds no scene")
    return scenes[0]


def _image_settings(scene: Any, path: str) -> tuple[Known, dict[str, str]]:
    """``image_settings`` and the render's ``file_extension``; an image type this table
    does not know (a newer Blender's) leaves both out: not known without Blender."""
    imtype = scene.get((b"r", b"im_format", b"imtype"))
    flag = scene.get((b"r", b"im_format", b"flag"))
    values: dict[str, Any] = {"use_preview": bool(flag & _IMF_FLAG_PREVIEW_JPG)}
    extension: dict[str, str] = {}
    if imtype in _IMAGE_TYPES:
        values["file_format"], extension["file_extension"] = _IMAGE_TYPES[imtype]
        if values["file_format"] == "JPEG2000" and scene.get(
                (b"r", b"im_format", b"jp2_codec"), default=0) == _JP2_CODEC_J2K:
            extension["file_extension"] = ".j2c"
    return Known(f"{path}.image_settings", values), extension


def _scene_context(scene: Any) -> Known:
    name = _text(scene.get((b"id", b"name")))[2:]

    def r(field: bytes) -> Any:
        return scene.get((b"r", field))

    image_settings, extension = _image_settings(scene, "C.scene.render")
    render = Known("C.scene.render", {  # RENDER_FIELDS
        "fps": r(b"frs_sec"),
        "fps_base": r(b"frs_sec_base"),
        **extension,
        "filepath": _text(r(b"pic")),
        "resolution_x": r(b"xsch"),
        "resolution_y": r(b"ysch"),
        "resolution_percentage": r(b"size"),
        "image_settings": image_settings,
    })
    return Known("C.scene", {
        "name": name,
        "frame_start": r(b"sfra"),
        "frame_end": r(b"efra"),
        "frame_step": r(b"frame_step"),
        "frame_current": r(b"cfra"),
        "render": render,
    })


def read_context(blend: Path) -> Known:
    """``C`` for ``blend``: ``C.scene`` is the scene Blender makes current on opening it.
    ``BlendFileError`` naming the file when it cannot be read."""
    try:
        bfile = open_blendfile(blend)
    except ShamanError:
        raise  # a BAT version this extension does not read with
    except OSError as exc:
        raise BlendFileError(f"Cannot read {blend}: {exc}", path=str(blend)) from exc
    except Exception as exc:  # BAT (and zstd) raise many kinds on damaged files
        raise BlendFileError(
            f"{blend} is not a .blend file this extension can read, or it is damaged "
            f"({type(exc).__name__}: {exc}).", path=str(blend)) from exc
    try:
        scene = _scene_context(_current_scene(bfile))
    except Exception as exc:  # BAT raises many kinds on damaged files
        raise BlendFileError(
            f"The scene settings of {blend} could not be read; the file may be damaged or "
            f"from a newer Blender ({type(exc).__name__}: {exc}).", path=str(blend)) from exc
    finally:
        bfile.close()
    return Known("C", {"scene": scene})


def _dotted(node: ast.expr) -> str | None:
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(names)])


def blender_only_reads(expression: str) -> list[str]:
    """What ``expression`` reads that only Blender knows (``bpy``, ``C.`` beyond
    ``KNOWN_NAMES``), as written: [] when the command line can evaluate it. A static
    look, for listing job types: ``getattr`` and the like are seen when evaluated."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return [expression]
    unknown: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "bpy":
            unknown.add("bpy")
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted and dotted.startswith("C.") and dotted not in KNOWN_NAMES:
                unknown.add(dotted)
    return sorted(u for u in unknown
                  if not any(u.startswith(other + ".") for other in unknown))


def command_line_evaluator(blend: Path) -> Callable[[JobType, str, Mapping[str, Any]],
                                                     dict[str, Any]]:
    """The command line's ``Evaluator`` for ``app.jobs.prepare_job``: the job type's
    expressions evaluated against ``blend`` as read here (read once, when first used)."""
    contexts: list[Known] = []

    def evaluate(job_type: JobType, jobname: str, given: Mapping[str, Any]) -> dict[str, Any]:
        if not contexts:
            contexts.append(read_context(blend))
        return evaluate_settings(job_type, context=contexts[0], bpy_module=None,
                                 jobname=jobname, blendfile=blend, given=given)

    return evaluate
