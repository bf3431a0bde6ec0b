"""Settings' values typed and checked per job type: ``--set``, ``job_settings`` JSON, and
the errors a person reads (the key, the type or choices expected, where it came from)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shaman_addon.errors import JobSettingInvalid
from shaman_addon.jobs.types import JobType, parse_job_type, parse_job_types
from shaman_addon.jobs.values import (
    INT32_MAX,
    check_value,
    expected,
    from_json,
    parse_assignments,
)

STOCK = Path(__file__).resolve().parents[1] / "support" / "data" / "stock_job_types.json"


def stock(name: str) -> JobType:
    types = parse_job_types(json.loads(STOCK.read_text()), url="stock")
    return next(t for t in types if t.name == name)


KINDS = parse_job_type({"name": "kinds", "settings": [
    {"key": "title", "type": "string"},
    {"key": "format", "type": "string", "choices": ["PNG", "JPEG", "OPEN_EXR"]},
    {"key": "count", "type": "int32"},
    {"key": "samples", "type": "int32", "propargs": {"min": 1, "max": 4096}},
    {"key": "scale", "type": "float", "propargs": {"min": 0.5}},
    {"key": "denoise", "type": "bool"},
    {"key": "blendfile", "type": "string"},
]}, url="test")


def invalid(call: Any, *args: Any, **kwargs: Any) -> JobSettingInvalid:
    with pytest.raises(JobSettingInvalid) as info:
        call(*args, **kwargs)
    return info.value


def test_set_values_are_typed_per_setting() -> None:
    values = parse_assignments(KINDS, [
        "title=a=b c", "format=JPEG", "count=-12", "samples=4_096", "scale=2",
        "denoise=Yes"])
    assert values == {"title": "a=b c", "format": "JPEG", "count": -12, "samples": 4096,
                      "scale": 2.0, "denoise": True}
    assert isinstance(values["scale"], float)
    for word, flag in (("true", True), ("no", False), ("1", True), ("0", False),
                       ("OFF", False), ("on", True)):
        assert parse_assignments(KINDS, [f"denoise={word}"]) == {"denoise": flag}
    assert parse_assignments(stock("simple-blender-render"), ["frames=1-10", "chunk_size=3"]) \
        == {"frames": "1-10", "chunk_size": 3}


@pytest.mark.parametrize(("item", "words"), [
    ("count=3.5", ["'count'", "job type 'kinds'", "a whole number (int32)",
                   "--set count=3.5", "not a whole number"]),
    ("count=9999999999", ["'count'", "out of range", "--set count=9999999999"]),
    ("samples=0", ["'samples'", "a whole number (int32) from 1 to 4096", "out of range"]),
    ("scale=0.1", ["'scale'", "a number (float) of at least 0.5"]),
    ("scale=lots", ["'scale'", "a number (float)", "not a number"]),
    ("scale=nan", ["'scale'", "not a finite number"]),
    ("denoise=maybe", ["'denoise'", "true or false (bool)", "true/false, yes/no"]),
    ("format=GIF", ["'format'", "one of 'PNG', 'JPEG', 'OPEN_EXR'", "--set format=GIF"]),
])
def test_set_errors_name_the_key_and_what_it_takes(item: str, words: list[str]) -> None:
    err = invalid(parse_assignments, KINDS, [item])
    assert err.key == item.split("=")[0]
    for word in words:
        assert word in str(err), (word, str(err))


def test_set_unknown_key_lists_the_job_types_keys() -> None:
    err = invalid(parse_assignments, stock("simple-blender-render"), ["frame=1-10"])
    assert err.key == "frame"
    text = str(err)
    assert "no setting 'frame'" in text and "'simple-blender-render'" in text
    assert "frames, chunk_size, render_output_root, add_path_components" in text
    assert "blendfile" not in text.split("settings are:")[1]


def test_set_refuses_what_is_not_an_assignment_a_repeat_and_blendfile() -> None:
    assert "not KEY=VALUE" in str(invalid(parse_assignments, KINDS, ["count"]))
    assert "not KEY=VALUE" in str(invalid(parse_assignments, KINDS, ["=3"]))
    assert "twice" in str(invalid(parse_assignments, KINDS, ["count=1", "count=2"]))
    err = invalid(parse_assignments, KINDS, ["blendfile=/x.blend"])
    assert err.key == "blendfile" and "filled in by the submission" in str(err)


def test_json_settings_are_checked_like_set() -> None:
    job_type = stock("simple-blender-render")
    assert from_json(job_type, '{"frames": "1-10", "chunk_size": 2, "has_previews": true,'
                     ' "fps": 24}') == {"frames": "1-10", "chunk_size": 2,
                                         "has_previews": True, "fps": 24.0}
    assert from_json(job_type, "") == {} and from_json(job_type, " {} ") == {}
    err = invalid(from_json, job_type, '{"chunk_size": "3"}')
    assert err.key == "chunk_size" and "job_settings gave '3' (not a number)" in str(err)
    err = invalid(from_json, job_type, '{"has_previews": 1}')
    assert "true or false (bool)" in str(err)
    assert "not a finite number" in str(invalid(from_json, job_type, '{"fps": NaN}'))
    assert "no setting 'frame'" in str(invalid(from_json, job_type, '{"frame": "1"}'))
    assert "not valid JSON" in str(invalid(from_json, job_type, "{frames: 1}"))
    assert "must be a JSON object" in str(invalid(from_json, job_type, '["frames"]'))
    huge = '{"frames": "' + "1," * 600_000 + '"}'
    assert "the limit is" in str(invalid(from_json, job_type, huge))


def test_check_value_types_and_bounds() -> None:
    count, scale, denoise = (KINDS.setting(k) for k in ("count", "scale", "denoise"))
    assert count is not None and scale is not None and denoise is not None
    assert check_value("kinds", count, 7.0, source="x") == 7
    assert isinstance(check_value("kinds", count, 7.0, source="x"), int)
    assert check_value("kinds", count, INT32_MAX, source="x") == INT32_MAX
    assert "out of range" in str(invalid(check_value, "kinds", count, INT32_MAX + 1, source="x"))
    assert "not a number" in str(invalid(check_value, "kinds", count, True, source="x"))
    assert "not true or false" in str(invalid(check_value, "kinds", denoise, 1, source="x"))
    assert "not text" in str(invalid(check_value, "kinds", KINDS.setting("title"), 3, source="x"))
    assert expected(scale) == "a number (float) of at least 0.5"


def test_check_value_says_where_the_value_came_from() -> None:
    samples = KINDS.setting("samples")
    assert samples is not None
    with pytest.raises(JobSettingInvalid) as info:
        check_value("kinds", samples, 5000, source="its expression 'C.scene.cycles.samples'")
    assert "but its expression 'C.scene.cycles.samples' gave 5000 (out of range)" \
        in str(info.value)
