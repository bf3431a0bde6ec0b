"""Every setting's value for a job: what the person gave, else the setting's expression
(``eval``), else the job type's default.

The expressions come from the Flamenco Manager the person configured, as part of its
job types. They are evaluated here as Python code from that server, with the trust one
gives any code from it (the job type's own script runs on the Manager and its commands
on the workers): nothing here sandboxes them. Point the extension only at a Manager you
trust.

They see the names the stock job types use: ``C`` (Blender's context, or on the
command line the scene read from the .blend: ``jobs/scene_blend.py``), ``bpy``,
``jobname``, ``Path`` (``pathlib.Path``), ``abspath`` (Blender's ``//`` = the blend's
folder), ``last_n_dir_parts(n)`` and ``settings`` (the values so far, by attribute). They
are evaluated in the job type's order, so a later expression reads the earlier results.

Blender's layer calls ``evaluate_settings`` on Blender's main thread with
``context=bpy.context, bpy_module=bpy``; the command line calls it with the context read
from the .blend and ``bpy_module=None``.
"""

from __future__ import annotations

import builtins
import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import NotKnownWithoutBlender, SettingNotComputable
from .types import JobSetting, JobType
from .values import NOT_GIVEN_KEYS, check_value, settable


class SettingsSoFar:
    """``settings`` in an expression: the values known so far, by attribute."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        try:
            return values[name]
        except KeyError:
            raise AttributeError(f"settings.{name} has no value", name=name,
                                 obj=self) from None

    def __repr__(self) -> str:
        return f"settings({dict(object.__getattribute__(self, '_values'))!r})"


class _NoBpy:
    """``bpy`` on the command line: any use of it is not known without Blender."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        raise NotKnownWithoutBlender(f"bpy.{name}")

    def __repr__(self) -> str:
        return "<bpy: not available without Blender>"


def blender_abspath(blendfile: Path) -> Callable[..., str]:
    """``abspath(path)`` as Blender's ``bpy.path.abspath``: a path starting with ``//``
    is relative to the blend's folder (or ``start``); any other path is returned as is."""
    folder = os.path.dirname(os.path.abspath(blendfile))

    def abspath(path: Any, *, start: Any = None, library: Any = None) -> str:
        text = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
        if text.startswith("//"):
            return os.path.join(folder if start is None else os.fspath(start), text[2:])
        return text

    return abspath


def last_n_dir_parts_of(blendfile: Path) -> Callable[[int], Path]:
    """``last_n_dir_parts(n)``: the last ``n`` folder names above the blend, as a
    relative path (``Path()`` for n <= 0; at most every folder name there is)."""
    names = Path(os.path.abspath(blendfile)).parent.parts[1:]

    def last_n_dir_parts(n: int) -> Path:
        count = int(n)
        return Path(*names[-count:]) if count > 0 and names else Path()

    return last_n_dir_parts


def _how_to_give(key: str, command_line: bool) -> str:
    if command_line:
        return f"--set {key}=VALUE"
    return f"a value of your own for {key!r} (unlock it in the panel, or job_settings)"


def _not_computable(job_type: JobType, setting: JobSetting, exc: Exception,
                    values: SettingsSoFar, command_line: bool) -> SettingNotComputable:
    key = setting.key
    head = (f"The setting {key!r} of job type {job_type.name!r} cannot be computed: its "
            f"expression {setting.eval!r}")
    if isinstance(exc, NotKnownWithoutBlender):
        text = (f"{head} reads {exc.what}, which the command line does not read from the "
                f".blend (only Blender knows it). Give it with {_how_to_give(key, True)}.")
    elif isinstance(exc, AttributeError) and getattr(exc, "obj", None) is values:
        other = str(getattr(exc, "name", ""))
        text = (f"{head} uses the setting {other!r}, which has no value yet. Give it with "
                f"{_how_to_give(other, command_line)}, or give {key!r} with "
                f"{_how_to_give(key, command_line)}.")
    else:
        text = (f"{head} failed ({type(exc).__name__}: {exc}). Give it with "
                f"{_how_to_give(key, command_line)}.")
    return SettingNotComputable(text, key=key)


@functools.lru_cache(maxsize=512)
def _compiled(expression: str, where: str) -> Any:
    """An expression compiled once (the panel evaluates them on every redraw)."""
    return compile(expression, where, "eval")


def _evaluate_one(job_type: JobType, setting: JobSetting, names: dict[str, Any],
                  command_line: bool) -> Any:
    try:
        code = _compiled(setting.eval, f"<{job_type.name}: {setting.key}>")
        result = eval(code, names)  # the Manager's own expression: see the docstring
    except Exception as exc:
        raise _not_computable(job_type, setting, exc, names["settings"],
                              command_line) from exc
    return check_value(job_type.name, setting, result,
                       source=f"its expression {setting.eval!r}")


def evaluate_settings(job_type: JobType, *, context: Any, bpy_module: Any, jobname: str,
                      blendfile: Path, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting's value but ``blendfile``, typed: a ``given`` value wins; else the
    setting's expression, evaluated in the job type's order; else its default. A setting
    with none of the three stays out (the Manager says what is missing).

    ``bpy_module=None`` means the command line: ``bpy`` is then not available, and an
    error says which ``--set`` supplies a value that cannot be computed.
    ``JobSettingInvalid`` for a value of the wrong type; ``SettingNotComputable`` for
    an expression that fails, naming the setting and the expression."""
    command_line = bpy_module is None
    known: dict[str, Any] = {}
    for setting in job_type.settings:
        if setting.default is not None and setting.key not in NOT_GIVEN_KEYS:
            known[setting.key] = check_value(job_type.name, setting, setting.default,
                                             source="the job type's default")
    for key, value in given.items():
        setting = settable(job_type, key, source="the values given")
        known[key] = check_value(job_type.name, setting, value, source="the value given")
    names: dict[str, Any] = {
        "__builtins__": builtins,
        "C": context,
        "bpy": _NoBpy() if command_line else bpy_module,
        "jobname": jobname,
        "Path": Path,
        "abspath": blender_abspath(blendfile),
        "last_n_dir_parts": last_n_dir_parts_of(blendfile),
        "settings": SettingsSoFar(known),
    }
    for setting in job_type.settings:
        if setting.key in NOT_GIVEN_KEYS or setting.key in given or not setting.eval:
            continue
        known[setting.key] = _evaluate_one(job_type, setting, names, command_line)
    order = [s.key for s in job_type.settings]
    return {key: known[key] for key in order if key in known}
