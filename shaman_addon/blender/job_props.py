"""The Render job section's generated properties: one property group per job type.

Each job type the Manager offers gets a property group generated from its
``JobType`` (one property per setting shown to the artist, typed as the setting says,
plus a lock for each ``showLinkButton`` setting), registered on the window manager and
generated again when the job type's etag changes. Everything lives in the session
(``job_choice`` holds the choice and remembers it per file).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..jobs.types import JobSetting, JobType, SettingType, Subtype

if TYPE_CHECKING:
    from ..jobs.catalog import ManagerInfo

log = logging.getLogger(__name__)

INT32 = (-(2**31), 2**31 - 1)
_SUBTYPES: dict[Subtype, Any] = {Subtype.FILE_PATH: "FILE_PATH", Subtype.DIR_PATH: "DIR_PATH",
             Subtype.FILE_NAME: "FILE_NAME", Subtype.HASHED_FILE_PATH: "FILE_PATH"}


@dataclass
class Generated:
    """One job type's generated property group, as registered."""

    job_type: JobType
    attr: str  # the WindowManager attribute holding it
    cls: type
    names: dict[str, str] = field(default_factory=dict)  # setting key -> property name


_groups: dict[str, Generated] = {}
_items_keepalive: dict[str, list[tuple[str, str, str]]] = {}
"""Enum items Blender reads by pointer: kept alive here."""
_class_counter = [0]


def prop_name(setting: JobSetting, index: int) -> str:
    key = setting.key
    return f"v_{key}" if key.isidentifier() and len(key) < 50 else f"v_{index}"


def lock_name(name: str) -> str:
    return "lock" + name[1:]


def is_automatic(setting: JobSetting, group: Any, name: str) -> bool:
    """True when the setting takes its automatic value (its expression) at submit time."""
    if not setting.eval:
        return False
    if not setting.show_link_button:
        return True
    return bool(getattr(group, lock_name(name), True))


# -- generating the properties ------------------------------------------------------------


def _changed(_self: Any, context: Any) -> None:
    from . import job_choice

    job_choice.changed(context)


def _bounds(setting: JobSetting, lo: float, hi: float) -> tuple[float, float]:
    low = lo if setting.minimum is None else max(lo, setting.minimum)
    high = hi if setting.maximum is None else min(hi, setting.maximum)
    return low, max(low, high)


def _number_default(setting: JobSetting, low: float, high: float) -> float:
    value = setting.default
    if isinstance(value, bool) or not isinstance(value, int | float):
        value = low if low > 0 or high < 0 else 0
    return min(max(value, low), high)


def setting_property(setting: JobSetting) -> Any:
    """The bpy property for one setting, from its type, subtype, choices and bounds."""
    common: dict[str, Any] = {
        "name": setting.title, "description": setting.description or setting.title,
        "update": _changed,
    }
    if setting.choices:
        items = [(c, c, "") for c in setting.choices]  # a fixed list: Blender copies it
        default = setting.default if setting.default in setting.choices else items[0][0]
        return EnumProperty(items=items, default=default, **common)
    if setting.type is SettingType.BOOL:
        return BoolProperty(default=bool(setting.default), **common)
    if setting.type is SettingType.INT32:
        low, high = _bounds(setting, *INT32)
        return IntProperty(min=int(low), max=int(high),
                           default=int(_number_default(setting, low, high)), **common)
    if setting.type is SettingType.FLOAT:
        low, high = _bounds(setting, -3.4e38, 3.4e38)
        return FloatProperty(min=low, max=high,
                             default=float(_number_default(setting, low, high)), **common)
    default = setting.default if isinstance(setting.default, str) else ""
    return StringProperty(default=default, subtype=_SUBTYPES.get(setting.subtype, "NONE"),
                          **common)


def make_group(job_type: JobType) -> Generated:
    """A PropertyGroup class for the settings of ``job_type`` shown to the artist."""
    annotations: dict[str, Any] = {}
    names: dict[str, str] = {}
    for index, setting in enumerate(job_type.settings):
        if not setting.visible.shown_to_artist:
            continue
        name = prop_name(setting, index)
        names[setting.key] = name
        annotations[name] = setting_property(setting)
        if setting.eval and setting.show_link_button:
            annotations[lock_name(name)] = BoolProperty(  # type: ignore[func-returns-value]
                name=f"Automatic {setting.title}",
                description=f"Closed: {setting.eval_description or 'the automatic value'}; "
                "open: type your own",
                default=True, update=_changed)
    _class_counter[0] += 1
    cls = type(f"SHAMAN_PG_jobtype_{_class_counter[0]}", (bpy.types.PropertyGroup,),
               {"__annotations__": annotations, "__doc__": job_type.label})
    digest = hashlib.sha1(job_type.name.encode()).hexdigest()[:12]
    return Generated(job_type, f"shaman_jt_{digest}", cls, names)


def drop_all() -> None:
    for name in list(_groups):
        _drop(_groups.pop(name))


def generated() -> dict[str, Generated]:
    return _groups


def _drop(gen: Generated) -> None:
    wm_type: Any = bpy.types.WindowManager
    if hasattr(wm_type, gen.attr):
        delattr(wm_type, gen.attr)
    bpy.utils.unregister_class(gen.cls)


def sync_groups(info: ManagerInfo | None) -> None:
    """Generate the property groups of ``info``'s job types; an unchanged etag keeps its
    group (and the values in it), a changed one is generated again."""
    wanted = {jt.name: jt for jt in (info.job_types if info is not None else ())}
    for name in list(_groups):
        gen = _groups[name]
        if name not in wanted or wanted[name].etag != gen.job_type.etag \
                or wanted[name] != gen.job_type:
            _drop(_groups.pop(name))
    for name, jt in wanted.items():
        if name in _groups:
            continue
        gen = make_group(jt)
        bpy.utils.register_class(gen.cls)
        wm_type: Any = bpy.types.WindowManager
        pointer = bpy.props.PointerProperty(type=gen.cls)  # type: ignore[func-returns-value]
        setattr(wm_type, gen.attr, pointer)
        _groups[name] = gen


def group_of(context: Any, name: str) -> tuple[Generated, Any] | None:
    gen = _groups.get(name)
    if gen is None:
        return None
    return gen, getattr(context.window_manager, gen.attr, None)


def keep_items(key: str, items: list[tuple[str, str, str]]) -> None:
    """Keep a dynamic enum's items alive while Blender may read them."""
    _items_keepalive[key] = items
