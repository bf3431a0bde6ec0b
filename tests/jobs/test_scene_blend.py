"""The scene read from a .blend without Blender, against Blender's own evaluation.

ONE bpy process (``scene_productions.py``) writes several productions (frame ranges,
fps / fps_base, JPEG / OPEN_EXR / PNG / a movie format, previews on and off, several
scenes with the current one not the first) and a file per image format Blender offers,
and evaluates every stock job setting there with ``evaluate_settings(context=bpy.context,
bpy_module=bpy)``. Here the command line's evaluator reads the same files with BAT and
must find the same values, setting by setting and attribute by attribute."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import zstandard

from shaman_addon.errors import BlendFileError, NotKnownWithoutBlender, SettingNotComputable
from shaman_addon.jobs.scene_blend import (
    KNOWN_NAMES,
    blender_only_reads,
    command_line_evaluator,
    read_context,
)
from shaman_addon.jobs.types import JobType, parse_job_type, parse_job_types

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "scene_productions.py"
STOCK = HERE.parent / "support" / "data" / "stock_job_types.json"


def stock_types() -> dict[str, JobType]:
    return {t.name: t for t in parse_job_types(json.loads(STOCK.read_text()), url="stock")}


@pytest.fixture(scope="module")
def blender_evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What Blender evaluated for each generated file (see scene_productions.py)."""
    out = tmp_path_factory.mktemp("scene-productions")
    python = os.environ.get("SHAMAN_BPY_PYTHON", sys.executable)  # Blender 4.2's, say
    proc = subprocess.run([python, str(SCRIPT), str(out), str(STOCK)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    found: dict[str, Any] = json.loads((out / "blender.json").read_text())
    return found


def _attribute(context: Any, dotted: str) -> Any:
    value = context
    for name in dotted.split("."):
        value = getattr(value, name)
    return value


def test_every_stock_setting_as_blender_evaluates_it(blender_evaluated: dict[str, Any]) -> None:
    types = stock_types()
    assert len(blender_evaluated) >= 5 + 12  # the productions and a file per format
    for name, found in blender_evaluated.items():
        blend = Path(found["blendfile"])
        evaluate = command_line_evaluator(blend)
        for job_type, runs in found["settings"].items():
            for run in runs:
                ours = evaluate(types[job_type], run["jobname"], run["given"])
                assert ours == run["values"], (name, job_type, run["given"])
                assert json.loads(json.dumps(ours)) == ours  # JSON as the Manager reads it
        assert all(found["abspath"]), name  # abspath == bpy.path.abspath


def test_every_attribute_read_is_what_blender_says(blender_evaluated: dict[str, Any]) -> None:
    formats = set()
    for name, found in blender_evaluated.items():
        context = read_context(Path(found["blendfile"]))
        for dotted, value in found["attributes"].items():
            assert _attribute(context, dotted) == value, (name, dotted)
        formats.add(found["attributes"]["scene.render.image_settings.file_format"])
    assert {"PNG", "JPEG", "OPEN_EXR", "OPEN_EXR_MULTILAYER", "FFMPEG"} <= formats
    attributes = set(next(iter(blender_evaluated.values()))["attributes"])
    leaves = {n for n in KNOWN_NAMES
              if not any(o.startswith(n + ".") for o in KNOWN_NAMES)}
    assert {f"C.{a}" for a in attributes} == leaves  # every attribute known is compared


def test_the_productions_differ_where_the_settings_do(blender_evaluated: dict[str, Any]
                                                      ) -> None:
    values = {name: found["settings"]["simple-blender-render"][0]["values"]
              for name, found in blender_evaluated.items() if "/" not in name}
    assert values["exr_current_not_first"]["scene"] == "Beta ü"  # not the first scene
    assert values["exr_current_not_first"]["frames"] == "101-148"
    assert values["exr_current_not_first"]["has_previews"] is True
    assert values["jpeg_ntsc"]["fps"] == pytest.approx(29.97, abs=0.001)
    assert values["png_preview_last"]["frames"] == "0-300"
    assert values["movie"]["format"] == "FFMPEG"
    assert len({v["format"] for v in values.values()}) >= 4
    second = blender_evaluated["jpeg_ntsc"]["settings"]["simple-blender-render"][1]
    assert second["values"]["render_output_path"] == \
        "/farm/out/sq010/sh020/lighting v2/{timestamp}/######"


def test_anything_else_is_not_known_without_blender(blender_evaluated: dict[str, Any]) -> None:
    context = read_context(Path(blender_evaluated["defaults"]["blendfile"]))
    with pytest.raises(NotKnownWithoutBlender) as info:
        _ = context.scene.cycles.samples
    assert info.value.what == "C.scene.cycles"
    assert getattr(context.scene.render, "use_motion_blur", "unknown") == "unknown"
    with pytest.raises(AttributeError):
        context.scene.name = "other"
    job_type = parse_job_type({"name": "t", "settings": [
        {"key": "camera", "type": "string", "eval": "C.scene.camera.name"}]}, url="t")
    evaluate = command_line_evaluator(Path(blender_evaluated["defaults"]["blendfile"]))
    with pytest.raises(SettingNotComputable, match=r"reads C\.scene\.camera.*--set camera="):
        evaluate(job_type, "job", {})
    assert evaluate(job_type, "job", {"camera": "Cam"}) == {"camera": "Cam"}


def test_blender_only_reads_is_the_static_view_of_the_same_rule() -> None:
    assert blender_only_reads("f'{C.scene.frame_start}-{C.scene.frame_end}'") == []
    assert blender_only_reads("C.scene.render.fps / C.scene.render.fps_base") == []
    assert blender_only_reads("C.scene.cycles.samples + C.scene.camera.data.lens") == [
        "C.scene.camera", "C.scene.cycles"]
    assert blender_only_reads("bpy.data.filepath") == ["bpy"]
    assert blender_only_reads("str(Path(abspath(settings.root), jobname))") == []
    assert blender_only_reads("f'{") == ["f'{"]


def _negative_length(plain: bytes) -> bytes:
    """The first block after the file header made to store minus its header's size: a
    reader that skips blocks by their length would read that header forever."""
    if plain[7:9] == b"17":  # Blender 5's large block headers
        start, header, length_at, fmt = 17, 32, 16, "<q"
    else:
        start, header, length_at, fmt = 12, 24, 4, "<i"
    data = bytearray(plain)
    struct.pack_into(fmt, data, start + length_at, -header)
    return bytes(data)


@pytest.mark.parametrize("damage", ["empty", "text", "header_only", "truncated", "garbage",
                                    "negative_length"])
@pytest.mark.parametrize("compressed", [False, True])
def test_a_damaged_file_is_a_blend_file_error(blender_evaluated: dict[str, Any],
                                              tmp_path: Path, damage: str,
                                              compressed: bool) -> None:
    good = Path(blender_evaluated["defaults"]["blendfile"]).read_bytes()
    assert good.startswith(b"BLENDER")  # saved uncompressed
    data = {
        "empty": b"",
        "text": b"not a blend file at all\n" * 10,
        "header_only": good[:12],
        "truncated": good[: len(good) // 3],
        "garbage": good[:12] + bytes(range(256)) * 64,
        "negative_length": _negative_length(good),
    }[damage]
    path = tmp_path / "broken.blend"
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if compressed else data)
    errors: list[BaseException] = []
    reader = threading.Thread(target=lambda: _record(errors, path), daemon=True)
    reader.start()
    reader.join(timeout=120)  # only a guard against a hang
    assert not reader.is_alive(), "reading a damaged file did not end"
    [error] = errors
    assert isinstance(error, BlendFileError) and str(path) in str(error), error
    with pytest.raises(BlendFileError):
        read_context(tmp_path / "absent.blend")


def _record(errors: list[BaseException], path: Path) -> None:
    try:
        read_context(path)
    except BaseException as exc:
        errors.append(exc)
