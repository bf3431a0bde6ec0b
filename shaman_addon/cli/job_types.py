"""``python -m shaman_addon job-types``: the Manager's job types and their settings, and
what ``submit --job-type`` does with each setting without Blender (computed from the
.blend, the job type's default, or a ``--set`` it needs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..app import present, settings
from ..app.present import NO_CACHE_WARNING
from ..app.user_paths import default_cache_dir


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


def run(args: argparse.Namespace) -> int:
    from ..app import jobs as app_jobs

    server, names = settings.command_line_server(args.server)
    chosen = settings.Settings(server_url=server)
    cache_dir = args.cache_dir if args.cache_dir is not None else default_cache_dir()
    if cache_dir is None:
        print(NO_CACHE_WARNING, file=sys.stderr)
    info = app_jobs.manager_info(server, chosen, names, cache_dir=cache_dir,
                                 refresh=args.refresh)
    if args.json:
        print(json.dumps(present.job_types_json(info), indent=2))
    else:
        print("\n".join(present.job_types_lines(info)))
    sys.stdout.flush()
    return 0
