"""``python -m shaman_addon job-types``: the Manager's job types and their settings, and
what ``submit --job-type`` does with each setting without Blender (computed from the
.blend, the job type's default, or a ``--set`` it needs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..app import settings
from ..app.user_paths import default_cache_dir

if TYPE_CHECKING:
    from ..jobs.catalog import ManagerInfo
    from ..jobs.types import JobSetting


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "job-types",
        help="list the Manager's render job types and their settings",
        description="List the Flamenco Manager's job types, each setting's type, default, "
        "choices and visibility, and how 'submit --job-type' fills it in without Blender: "
        "computed from the .blend, the default, or a --set KEY=VALUE it needs.",
    )
    p.add_argument("--server", metavar="URL",
                   help=f"the Flamenco Manager's URL (default: ${settings.ENV_SERVER_URL})")
    p.add_argument("--json", action="store_true", help="print them as JSON on stdout")
    p.add_argument("--refresh", action="store_true",
                   help="ask the Manager again instead of using the cached job types")
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="where the job types are cached (default: "
                   "$XDG_CACHE_HOME/shaman-submitter or ~/.cache/shaman-submitter)")
    p.set_defaults(func=run)


def command_line(setting: JobSetting) -> tuple[str, list[str]]:
    """How ``submit`` fills ``setting`` in without Blender: ('computed', []), ('default',
    []), ('needs_set', [what only Blender reads]), ('optional', []) or ('submission',
    [])."""
    from ..jobs.scene_blend import blender_only_reads
    from ..jobs.values import NOT_GIVEN_KEYS

    if setting.key in NOT_GIVEN_KEYS:
        return "submission", []
    if setting.eval:
        unknown = blender_only_reads(setting.eval)
        return ("needs_set", unknown) if unknown else ("computed", [])
    if setting.default is not None:
        return "default", []
    return ("needs_set", []) if setting.required else ("optional", [])


def _setting_json(setting: JobSetting) -> dict[str, Any]:
    from ..jobs.values import expected

    how, reads = command_line(setting)
    return {
        "key": setting.key, "type": setting.type.value, "subtype": setting.subtype.value,
        "expected": expected(setting), "default": setting.default,
        "choices": list(setting.choices), "min": setting.minimum, "max": setting.maximum,
        "required": setting.required, "editable": setting.editable,
        "visible": setting.visible.value, "shown_to_artist": setting.visible.shown_to_artist,
        "label": setting.title, "description": setting.description, "eval": setting.eval,
        "eval_description": setting.eval_description,
        "show_link_button": setting.show_link_button,
        "command_line": how, "blender_only_reads": reads,
    }


def info_json(info: ManagerInfo) -> dict[str, Any]:
    return {
        "server": info.url, "version": info.version, "fetched_at": info.fetched_at,
        "job_types": [
            {"name": t.name, "label": t.label, "description": t.description, "etag": t.etag,
             "settings": [_setting_json(s) for s in t.settings]}
            for t in info.job_types],
        "worker_tags": [{"id": t.id, "name": t.name, "description": t.description}
                        for t in info.worker_tags],
    }


def _how_words(setting: JobSetting) -> str:
    how, reads = command_line(setting)
    if how == "submission":
        return "set by the submission (the .blend in the checkout)"
    if how == "computed":
        return "computed from the .blend"
    if how == "default":
        return f"default {setting.default!r}"
    if how == "optional":
        return "optional"
    why = f" (reads {', '.join(reads)}, which only Blender knows)" if reads else " (required)"
    return f"needs --set {setting.key}=VALUE{why}"


def setting_lines(setting: JobSetting) -> list[str]:
    from ..jobs.values import expected

    shown = "shown to the artist" if setting.visible.shown_to_artist else "not shown"
    flags = [f"{setting.visible.value}: {shown}"]
    if setting.required:
        flags.append("required")
    if not setting.editable:
        flags.append("not editable")
    lines = [f"  {setting.key}: {expected(setting)}; {'; '.join(flags)}",
             f"      command line: {_how_words(setting)}"]
    if setting.eval:
        lines.append(f"      automatic value: {setting.eval}")
    if setting.description:
        lines.append(f"      {setting.description}")
    return lines


def info_lines(info: ManagerInfo) -> list[str]:
    lines = [f"Job types of the Manager at {info.url} (Flamenco {info.version}):"]
    for job_type in info.job_types:
        about = f": {job_type.description}" if job_type.description else ""
        lines.append(f"{job_type.name} ({job_type.label}){about}")
        for setting in job_type.settings:
            lines.extend(setting_lines(setting))
    tags = ", ".join(t.name for t in info.worker_tags) or "none"
    lines.append(f"Worker tags: {tags}")
    return lines


def run(args: argparse.Namespace) -> int:
    from ..app import jobs as app_jobs

    server, names = settings.command_line_server(args.server)
    chosen = settings.Settings(server_url=server)
    cache_dir = args.cache_dir if args.cache_dir is not None else default_cache_dir()
    info = app_jobs.manager_info(server, chosen, names, cache_dir=cache_dir,
                                 refresh=args.refresh)
    if args.json:
        print(json.dumps(info_json(info), indent=2))
    else:
        print("\n".join(info_lines(info)))
    sys.stdout.flush()
    return 0
