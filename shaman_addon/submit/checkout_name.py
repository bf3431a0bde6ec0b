"""The checkout path: rendered from a template, then made acceptable to the server.

A real Flamenco Manager refuses a checkout path that starts with ``/``, contains any of
``? * : ; { } \\``, or contains ``../`` or ``/..``; and a part like ``..`` would escape
the jobs folder. Artists name files freely, so every rendered name goes through
``sanitize_checkout_path`` before it is sent.
"""

from __future__ import annotations

import getpass
import re
import string
from datetime import datetime

from ..errors import ConfigError

DEFAULT_TEMPLATE = "{blend_name}-{date}-{time}"

PLACEHOLDERS = {
    "blend_name": "the .blend file's name without '.blend'",
    "date": "the date, YYYY-MM-DD",
    "time": "the time of day, HHMMSS",
    "datetime": "date and time, YYYYMMDD-HHMMSS",
    "year": "four-digit year",
    "month": "two-digit month",
    "day": "two-digit day",
    "user": "the login name of whoever submits",
}

_FORBIDDEN = re.compile(r"[?*:;{}\\\x00-\x1f\x7f]")
_MAX_PART_BYTES = 200
_FALLBACK = "submission"


def _trim_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def sanitize_checkout_path(name: str) -> str:
    """Make ``name`` a checkout path the server accepts and that stays in its folder.

    Forbidden characters (``? * : ; { } \\`` and control characters) become ``_``;
    ``/`` is kept between parts; empty, ``.`` and ``..`` parts are dropped, dots at the
    start or end of a part are removed (so no ``../`` or ``/..`` can appear), blanks
    around parts are trimmed, and a part is cut to 200 bytes. The result may be empty.
    """
    parts = []
    for raw in _FORBIDDEN.sub("_", name).split("/"):
        part = raw.strip().strip(".").strip()
        part = _trim_utf8(part, _MAX_PART_BYTES).strip().strip(".")
        if part:
            parts.append(part)
    return "/".join(parts)


def template_fields(template: str) -> list[str]:
    """The placeholder names in ``template``; ConfigError on one that does not exist."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(
            f"The checkout path template {template!r} is malformed ({exc}); use placeholders "
            f"like {{blend_name}} and double braces for a literal brace."
        ) from exc
    names = []
    for _literal, field, _spec, _conv in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            known = ", ".join("{" + k + "}" for k in PLACEHOLDERS)
            raise ConfigError(
                f"The checkout path template {template!r} uses an unknown placeholder "
                f"{{{field}}}; known ones are {known}."
            )
        names.append(field)
    return names


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name on this machine (containers, odd Windows setups)
        return "user"


def template_values(blend_name: str, *, now: datetime | None = None,
                    user: str | None = None) -> dict[str, str]:
    """Every placeholder's value (a ``/`` inside one becomes ``_``)."""
    now = now or datetime.now()
    stem = blend_name[:-6] if blend_name.lower().endswith(".blend") else blend_name
    values = {
        "blend_name": stem or _FALLBACK,
        "date": now.strftime("%Y-%m-%d"),
        "time": now.strftime("%H%M%S"),
        "datetime": now.strftime("%Y%m%d-%H%M%S"),
        "year": now.strftime("%Y"),
        "month": now.strftime("%m"),
        "day": now.strftime("%d"),
        "user": user if user is not None else _current_user(),
    }
    return {k: v.replace("/", "_") for k, v in values.items()}


def render_checkout_name(
    template: str,
    *,
    blend_name: str,
    now: datetime | None = None,
    user: str | None = None,
) -> str:
    """Render the checkout path template and sanitise the result.

    Placeholders: ``{blend_name}`` (the .blend's name without ``.blend``), ``{date}``
    (YYYY-MM-DD), ``{time}`` (HHMMSS), ``{datetime}`` (YYYYMMDD-HHMMSS), ``{year}``,
    ``{month}``, ``{day}``, ``{user}`` (login name). A ``/`` in the template makes
    folders; one inside a value does not (it becomes ``_``). An unknown placeholder is a
    ConfigError. A result that sanitises to nothing falls back to the default template.
    """
    template_fields(template)
    values = template_values(blend_name, now=now, user=user)
    result = sanitize_checkout_path(template.format(**values))
    if not result and template != DEFAULT_TEMPLATE:
        result = sanitize_checkout_path(DEFAULT_TEMPLATE.format(**values))
    return result or _FALLBACK


def render_job_name(template: str, *, blend_name: str, now: datetime | None = None,
                    user: str | None = None) -> str:
    """A render job's name from a template with the checkout path's placeholders (an
    empty template: the blend's name). Not a path, so nothing is sanitised but blanks
    around it; ConfigError on an unknown placeholder."""
    template_fields(template or "{blend_name}")
    values = template_values(blend_name, now=now, user=user)
    return (template or "{blend_name}").format(**values).strip() or values["blend_name"]
