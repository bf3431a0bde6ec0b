"""``python -m shaman_addon check``: is the server reachable, a Manager, with Shaman on?

One attempt per call and never a traceback: the answer is the ``ServerCheck`` in words,
so a TD can run it first when a submission fails.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..app import present, settings
from ..app.exit_codes import EXIT_FAILED, EXIT_OK


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check",
        help="say whether the Shaman server is reachable and has Shaman enabled",
        description="Ask the server once whether it is reachable, is a Flamenco Manager "
        "and has Shaman enabled. Exit 0 when all three hold, else 1.",
    )
    p.add_argument("--server", metavar="URL",
                   help=f"the Flamenco Manager's URL (default: ${settings.ENV_SERVER_URL})")
    p.add_argument("--json", action="store_true", help="print the answer as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..app.runner import check_server

    given, names = settings.command_line_server(args.server)
    url = settings.resolve_server_url(given, names)
    answer = check_server(url, settings.client_settings(settings.Settings()))
    if args.json:
        print(json.dumps(present.check_json(url, answer), indent=2))
    else:
        print("\n".join(present.check_lines(answer)))
    return EXIT_OK if answer.ok else EXIT_FAILED
