"""A Manager's job types as typed values: what the form, the command line's ``--set``,
the evaluation and the job's settings are all built from.

The Manager is the authority on its job types (``GET /api/v3/jobs/types``); this module
only reads its answer, with bounds no real job type comes near, so a broken or hostile
server cannot make the extension build a form of a million fields. Unknown keys are
ignored (a newer Manager may add some); unknown ``type``/``visible`` values make the
setting read as a plain string / ``visible`` rather than refusing the whole job type.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotAShamanServer

MAX_JOB_TYPES = 200
MAX_SETTINGS = 200
MAX_CHOICES = 1000
MAX_TEXT = 4000
"""Longest label, description or expression kept (longer ones are cut)."""


class SettingType(enum.Enum):
    STRING = "string"
    INT32 = "int32"
    FLOAT = "float"
    BOOL = "bool"


class Visibility(enum.Enum):
    VISIBLE = "visible"  # shown to the artist and in the web app
    SUBMISSION = "submission"  # shown to the artist only
    WEB = "web"  # only in the web app
    HIDDEN = "hidden"  # nowhere

    @property
    def shown_to_artist(self) -> bool:
        return self in (Visibility.VISIBLE, Visibility.SUBMISSION)


class Subtype(enum.Enum):
    NONE = ""
    FILE_PATH = "file_path"
    DIR_PATH = "dir_path"
    FILE_NAME = "file_name"
    HASHED_FILE_PATH = "hashed_file_path"


@dataclass(frozen=True)
class JobSetting:
    """One setting of a job type, as the Manager defines it."""

    key: str
    type: SettingType
    subtype: Subtype = Subtype.NONE
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # propargs.min
    maximum: float | None = None  # propargs.max
    default: Any = None
    required: bool = False
    editable: bool = True
    visible: Visibility = Visibility.VISIBLE
    label: str = ""
    description: str = ""
    eval: str = ""
    """A Python expression giving the automatic value ('' when there is none)."""
    eval_description: str = ""
    show_link_button: bool = False
    """evalInfo.showLinkButton: the artist chooses between the automatic value (the
    lock closed) and their own."""

    @property
    def title(self) -> str:
        """What the form calls it: the label, else the key in words."""
        return self.label or self.key.replace("_", " ").capitalize()


@dataclass(frozen=True)
class JobType:
    name: str
    label: str
    etag: str
    description: str = ""
    settings: tuple[JobSetting, ...] = field(default_factory=tuple)

    def setting(self, key: str) -> JobSetting | None:
        for s in self.settings:
            if s.key == key:
                return s
        return None


def _text(value: Any) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _of(doc: Mapping[str, Any], key: str, kind: type) -> Any:
    """``doc[key]`` when it is a ``kind``, else an empty one."""
    value = doc.get(key)
    return value if isinstance(value, kind) else kind()


def _enum(kind: type[enum.Enum], value: Any, fallback: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        return fallback


def parse_setting(doc: Mapping[str, Any]) -> JobSetting:
    """One setting from the Manager's JSON; ValueError when it has no usable key."""
    key = doc.get("key")
    if not isinstance(key, str) or not key or len(key) > 200:
        raise ValueError(f"a job setting without a usable key: {str(key)[:80]!r}")
    propargs, eval_info = _of(doc, "propargs", dict), _of(doc, "evalInfo", dict)
    choices = _of(doc, "choices", list)
    return JobSetting(
        key=key,
        type=_enum(SettingType, doc.get("type"), SettingType.STRING),
        subtype=_enum(Subtype, doc.get("subtype", ""), Subtype.NONE),
        choices=tuple(str(c)[:MAX_TEXT] for c in choices[:MAX_CHOICES]),
        minimum=_number(propargs.get("min")),
        maximum=_number(propargs.get("max")),
        default=doc.get("default"),
        required=doc.get("required") is True,
        editable=doc.get("editable") is not False,
        visible=_enum(Visibility, doc.get("visible", "visible"), Visibility.VISIBLE),
        label=_text(doc.get("label")),
        description=_text(doc.get("description")),
        eval=_text(doc.get("eval")),
        eval_description=_text(eval_info.get("description")),
        show_link_button=eval_info.get("showLinkButton") is True,
    )


def parse_job_type(doc: Any, *, url: str) -> JobType:
    """One job type (``GET /jobs/type/NAME``, or an entry of ``/jobs/types``);
    NotAShamanServer naming ``url`` when it is not shaped like one."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("name"), str):
        raise NotAShamanServer(f"{url} answered with something that is not a job type.",
                               url=url)
    settings = _of(doc, "settings", list)
    if len(settings) > MAX_SETTINGS:
        raise NotAShamanServer(
            f"{url} describes job type {doc['name'][:80]!r} with {len(settings):,} settings;"
            f" no real job type has more than {MAX_SETTINGS}.", url=url)
    parsed: list[JobSetting] = []
    for item in settings:
        if not isinstance(item, Mapping):
            continue
        try:
            parsed.append(parse_setting(item))
        except ValueError:
            continue
    return JobType(name=doc["name"][:200], label=_text(doc.get("label")) or doc["name"][:200],
                   etag=_text(doc.get("etag")), description=_text(doc.get("description")),
                   settings=tuple(parsed))


def parse_job_types(doc: Any, *, url: str) -> tuple[JobType, ...]:
    """``GET /api/v3/jobs/types``: ``{"job_types": [...]}``."""
    items = doc.get("job_types") if isinstance(doc, Mapping) else None
    if not isinstance(items, list):
        raise NotAShamanServer(f"{url} answered without a list of job types.", url=url)
    if len(items) > MAX_JOB_TYPES:
        raise NotAShamanServer(
            f"{url} lists {len(items):,} job types; the limit is {MAX_JOB_TYPES}.", url=url)
    return tuple(parse_job_type(item, url=url) for item in items)
