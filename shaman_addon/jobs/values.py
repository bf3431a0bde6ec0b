"""A job setting's value, typed and checked as its job type says.

Every value a job carries goes through ``check_value``: a person's ``--set KEY=VALUE``
(``parse_assignments``), the headless operator's ``job_settings`` JSON (``from_json``),
a value typed in the panel, an expression's result and the job type's default. A value
that does not fit is a ``JobSettingInvalid`` naming the job type, the key, the type or
choices expected and where the value came from, so the person knows what to change.

The Manager decides the types (``string``, ``int32``, ``float``, ``bool``) and the
bounds (``propargs`` min/max, ``choices``); an ``int32`` also stays inside 32 bits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from ..errors import JobSettingInvalid
from .types import JobSetting, JobType, SettingType

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MAX_JSON_CHARS = 1_000_000
"""The longest ``job_settings`` document read (a real one is a few hundred characters)."""
NOT_GIVEN_KEYS = frozenset({"blendfile"})
"""Settings the submission fills in itself (the checkout decides the blend's path)."""

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _bounds(setting: JobSetting) -> tuple[float | None, float | None]:
    low, high = setting.minimum, setting.maximum
    if setting.type is SettingType.INT32:
        low = INT32_MIN if low is None else max(low, INT32_MIN)
        high = INT32_MAX if high is None else min(high, INT32_MAX)
    return low, high


def _number_text(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def expected(setting: JobSetting) -> str:
    """What a setting takes, in words: 'a whole number (int32) from 0 to 32',
    "one of 'PNG', 'JPEG'", 'true or false (bool)'."""
    if setting.choices:
        return "one of " + ", ".join(repr(c) for c in setting.choices)
    kind = {
        SettingType.STRING: "text (string)",
        SettingType.INT32: "a whole number (int32)",
        SettingType.FLOAT: "a number (float)",
        SettingType.BOOL: "true or false (bool)",
    }[setting.type]
    if setting.type in (SettingType.STRING, SettingType.BOOL):
        return kind
    low, high = setting.minimum, setting.maximum
    if low is not None and high is not None:
        return f"{kind} from {_number_text(low)} to {_number_text(high)}"
    if low is not None:
        return f"{kind} of at least {_number_text(low)}"
    if high is not None:
        return f"{kind} of at most {_number_text(high)}"
    return kind


def _invalid(job_type: str, setting: JobSetting, value: Any, source: str,
             why: str = "") -> JobSettingInvalid:
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    reason = f" ({why})" if why else ""
    return JobSettingInvalid(
        f"The setting {setting.key!r} of job type {job_type!r} takes {expected(setting)}, "
        f"but {source} gave {shown}{reason}.", key=setting.key)


def _typed(setting: JobSetting, value: Any) -> Any:
    """``value`` as the setting's Python type; ValueError when it is not one."""
    kind = setting.type
    if kind is SettingType.STRING:
        if not isinstance(value, str):
            raise ValueError("not text")
        return value
    if kind is SettingType.BOOL:
        if not isinstance(value, bool):
            raise ValueError("not true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    if kind is SettingType.INT32:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError("not a whole number")
            value = int(value)
        return value
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def check_value(job_type: str, setting: JobSetting, value: Any, *, source: str) -> Any:
    """``value`` typed for ``setting`` (an int32 as ``int``, a float as ``float``...);
    ``JobSettingInvalid`` when it is of another type, out of bounds or not a choice.
    ``source`` says where it came from, for the message ('--set frames=x', 'the
    expression ...')."""
    try:
        typed = _typed(setting, value)
    except ValueError as exc:
        raise _invalid(job_type, setting, value, source, str(exc)) from exc
    if setting.choices and str(typed) not in setting.choices:
        raise _invalid(job_type, setting, value, source)
    if setting.type in (SettingType.INT32, SettingType.FLOAT):
        low, high = _bounds(setting)
        if (low is not None and typed < low) or (high is not None and typed > high):
            raise _invalid(job_type, setting, value, source, "out of range")
    return typed


def from_text(job_type: str, setting: JobSetting, text: str, *, source: str) -> Any:
    """A value typed on a command line, read as the setting's type."""
    kind = setting.type
    value: Any = text
    try:
        if kind is SettingType.INT32:
            value = int(text.strip().replace("_", ""), 10)
        elif kind is SettingType.FLOAT:
            value = float(text.strip())
        elif kind is SettingType.BOOL:
            word = text.strip().lower()
            if word not in _TRUE + _FALSE:
                raise ValueError("not one of true/false, yes/no, on/off, 1/0")
            value = word in _TRUE
    except ValueError as exc:
        why = "not a whole number" if kind is SettingType.INT32 else "not a number"
        if kind is SettingType.BOOL:
            why = str(exc)
        raise _invalid(job_type, setting, text, source, why) from exc
    return check_value(job_type, setting, value, source=source)


def settable(job_type: JobType, key: str, *, source: str) -> JobSetting:
    """The setting ``key`` a person may give; ``JobSettingInvalid`` listing the job
    type's keys when there is none (or it is one the submission fills in)."""
    setting = job_type.setting(key)
    if setting is not None and key not in NOT_GIVEN_KEYS:
        return setting
    if key in NOT_GIVEN_KEYS and setting is not None:
        raise JobSettingInvalid(
            f"The setting {key!r} of job type {job_type.name!r} is filled in by the "
            f"submission (from the checkout); {source} cannot give it.", key=key)
    keys = ", ".join(s.key for s in job_type.settings if s.key not in NOT_GIVEN_KEYS)
    raise JobSettingInvalid(
        f"Job type {job_type.name!r} has no setting {key!r} ({source}); its settings are: "
        f"{keys or 'none'}.", key=key)


def parse_assignments(job_type: JobType, items: Iterable[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as typed values, by key. Errors name the item, the key
    and what it takes; an unknown key lists the job type's keys."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise JobSettingInvalid(
                f"--set {item!r} is not KEY=VALUE; give a setting of job type "
                f"{job_type.name!r} as --set KEY=VALUE.", key=key)
        source = f"--set {item}"
        setting = settable(job_type, key, source=source)
        if key in values:
            raise JobSettingInvalid(
                f"--set gives the setting {key!r} twice; give it once.", key=key)
        values[key] = from_text(job_type.name, setting, text, source=source)
    return values


def from_json(job_type: JobType, text: str, *, source: str = "job_settings") -> dict[str, Any]:
    """A JSON object of settings (the headless operator's ``job_settings``) as typed
    values, by key: JSON strings, numbers and true/false, checked like ``--set``."""
    if len(text) > MAX_JSON_CHARS:
        raise JobSettingInvalid(
            f"{source} is {len(text):,} characters long; the limit is {MAX_JSON_CHARS:,}.",
            key="")
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise JobSettingInvalid(
            f"{source} is not valid JSON ({exc}); give an object such as "
            '\'{"frames": "1-10"}\'.', key="") from exc
    if not isinstance(doc, dict):
        raise JobSettingInvalid(
            f"{source} must be a JSON object of settings by key, such as "
            f'\'{{"frames": "1-10"}}\', not {type(doc).__name__}.', key="")
    values: dict[str, Any] = {}
    for key, value in doc.items():
        setting = settable(job_type, key, source=source)
        values[key] = check_value(job_type.name, setting, value, source=source)
    return values
