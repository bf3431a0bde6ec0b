"""``evaluate_settings`` on the command line's context (``scene_blend.Known``, the class
the .blend reader returns) and with a ``bpy`` of its own: what wins, the order, the names
the stock job types use, and the errors naming the setting, the expression and the
``--set`` that supplies the value. Blender's own evaluation is compared in
test_scene_blend.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from shaman_addon.errors import JobSettingInvalid, SettingNotComputable
from shaman_addon.jobs.expressions import (
    blender_abspath,
    evaluate_settings,
    last_n_dir_parts_of,
)
from shaman_addon.jobs.scene_blend import Known
from shaman_addon.jobs.types import JobType, parse_job_type, parse_job_types

STOCK = Path(__file__).resolve().parents[1] / "support" / "data" / "stock_job_types.json"
BLEND = Path("/projects/sprite/shots/sh010/lighting.blend")


def stock(name: str) -> JobType:
    types = parse_job_types(json.loads(STOCK.read_text()), url="stock")
    return next(t for t in types if t.name == name)


def scene(**render: Any) -> Known:
    image = Known("C.scene.render.image_settings",
                  {"file_format": render.pop("file_format", "PNG"),
                   "use_preview": render.pop("use_preview", False)})
    values = {"fps": 24, "fps_base": 1.0, "file_extension": ".png", **render}
    return Known("C", {"scene": Known("C.scene", {
        "name": "Shot", "frame_start": 3, "frame_end": 9,
        "render": Known("C.scene.render", {**values, "image_settings": image})})})


def evaluate(job_type: JobType, given: dict[str, Any], *, context: Any = None,
             bpy_module: Any = None, blend: Path = BLEND) -> dict[str, Any]:
    return evaluate_settings(job_type, context=context or scene(), bpy_module=bpy_module,
                             jobname="sh010 v2", blendfile=blend, given=given)


def test_stock_render_settings_from_the_context_given_values_and_defaults() -> None:
    values = evaluate(stock("simple-blender-render"),
                      {"render_output_root": "//render", "add_path_components": 2},
                      context=scene(fps=30, fps_base=1.001, file_format="JPEG",
                                    file_extension=".jpg", use_preview=True))
    assert values == {
        "frames": "3-9",
        "chunk_size": 1,  # the default
        "render_output_root": "//render",
        "add_path_components": 2,
        "render_output_path": "/projects/sprite/shots/sh010/render/shots/sh010/sh010 v2/"
                              "{timestamp}/######",
        "fps": 30 / 1.001,
        "format": "JPEG",
        "image_file_extension": ".jpg",
        "has_previews": True,
        "scene": "Shot",
    }
    assert list(values) == [s.key for s in stock("simple-blender-render").settings
                            if s.key != "blendfile"]


def test_a_given_value_wins_and_later_expressions_see_it() -> None:
    job_type = parse_job_type({"name": "t", "settings": [
        {"key": "a", "type": "int32", "eval": "C.scene.frame_start", "default": 100},
        {"key": "b", "type": "string", "eval": "f'{settings.a}+{settings.c}'"},
        {"key": "c", "type": "int32", "default": 7},
        {"key": "d", "type": "string", "required": True},
        {"key": "blendfile", "type": "string", "eval": "'never'"},
    ]}, url="test")
    assert evaluate(job_type, {}) == {"a": 3, "b": "3+7", "c": 7}
    assert evaluate(job_type, {"a": 5, "c": 1, "d": "x"}) == {"a": 5, "b": "5+1", "c": 1,
                                                              "d": "x"}
    with pytest.raises(JobSettingInvalid) as info:
        evaluate(job_type, {"blendfile": "/x.blend"})
    assert info.value.key == "blendfile"


def test_what_the_command_line_cannot_read_names_the_set_that_supplies_it() -> None:
    job_type = parse_job_type({"name": "custom", "settings": [
        {"key": "frames", "type": "string", "eval": "f'{C.scene.frame_start}'"},
        {"key": "samples", "type": "int32", "eval": "C.scene.cycles.samples"},
    ]}, url="test")
    with pytest.raises(SettingNotComputable) as info:
        evaluate(job_type, {})
    err = info.value
    assert err.key == "samples"
    assert str(err) == (
        "The setting 'samples' of job type 'custom' cannot be computed: its expression "
        "'C.scene.cycles.samples' reads C.scene.cycles, which the command line does not "
        "read from the .blend (only Blender knows it). Give it with --set samples=VALUE.")
    assert evaluate(job_type, {"samples": 64}) == {"frames": "3", "samples": 64}
    bpy_type = parse_job_type({"name": "b", "settings": [
        {"key": "path", "type": "string", "eval": "bpy.data.filepath"}]}, url="test")
    with pytest.raises(SettingNotComputable, match=r"reads bpy\.data, .*--set path=VALUE"):
        evaluate(bpy_type, {})
    # getattr with a default still works: the signal is an AttributeError.
    soft = parse_job_type({"name": "s", "settings": [
        {"key": "n", "type": "int32", "eval": "getattr(C.scene, 'frame_step', 1)"}]},
        url="test")
    assert evaluate(soft, {}) == {"n": 1}


def test_a_missing_setting_read_by_another_names_both_sets() -> None:
    with pytest.raises(SettingNotComputable) as info:
        evaluate(stock("simple-blender-render"), {})
    err = info.value
    assert err.key == "render_output_path"
    assert "uses the setting 'render_output_root', which has no value yet" in str(err)
    assert "--set render_output_root=VALUE" in str(err)
    assert "--set render_output_path=VALUE" in str(err)
    assert "settings.render_output_root" in str(err)  # the expression is quoted


def test_failing_and_mistyped_expressions_name_setting_and_expression() -> None:
    job_type = stock("simple-blender-render")
    given = {"render_output_root": "/out"}
    with pytest.raises(SettingNotComputable) as info:
        evaluate(job_type, given, context=scene(fps_base=0.0))
    assert info.value.key == "fps"
    assert "'C.scene.render.fps / C.scene.render.fps_base' failed (ZeroDivisionError" \
        in str(info.value)
    with pytest.raises(JobSettingInvalid) as bad:
        evaluate(job_type, given, context=scene(use_preview="yes"))
    assert bad.value.key == "has_previews"
    assert "its expression 'C.scene.render.image_settings.use_preview' gave 'yes'" \
        in str(bad.value)
    broken = parse_job_type({"name": "x", "settings": [
        {"key": "k", "type": "string", "eval": "f'{"}]}, url="test")
    with pytest.raises(SettingNotComputable, match="failed \\(SyntaxError"):
        evaluate(broken, {})


def test_in_blender_bpy_is_the_module_and_errors_do_not_speak_of_set() -> None:
    fake_bpy = SimpleNamespace(data=SimpleNamespace(filepath=str(BLEND)))
    job_type = parse_job_type({"name": "b", "settings": [
        {"key": "path", "type": "string", "eval": "bpy.data.filepath"},
        {"key": "root", "type": "string"},
        {"key": "out", "type": "string", "eval": "settings.root + '/x'"}]}, url="test")
    assert evaluate(job_type, {"root": "/r"}, bpy_module=fake_bpy) == {
        "path": str(BLEND), "root": "/r", "out": "/r/x"}
    with pytest.raises(SettingNotComputable) as info:
        evaluate(job_type, {}, bpy_module=fake_bpy)
    assert "--set" not in str(info.value) and "unlock it in the panel" in str(info.value)


def test_abspath_and_last_n_dir_parts_follow_the_blend() -> None:
    abspath = blender_abspath(BLEND)
    assert abspath("//render/") == "/projects/sprite/shots/sh010/render/"
    assert abspath("//") == "/projects/sprite/shots/sh010/"
    assert abspath("/abs/x") == "/abs/x" and abspath("rel") == "rel"
    assert abspath("//a", start="/s") == "/s/a"
    last = last_n_dir_parts_of(BLEND)
    assert last(0) == Path() and last(-1) == Path()
    assert last(1) == Path("sh010") and last(3) == Path("sprite/shots/sh010")
    assert last(99) == Path("projects/sprite/shots/sh010")  # never the root: relative
    relative = last_n_dir_parts_of(Path("here.blend"))
    assert relative(1) == Path(Path(os.getcwd()).name)
