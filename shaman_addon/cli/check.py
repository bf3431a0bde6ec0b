"""``python -m shaman_addon check``: is the server reachable, a Manager, with Shaman on?

One attempt per call and never a traceback: the answer is the ``ServerCheck`` in words,
so a TD can run it first when a submission fails.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..app.exit_codes import EXIT_FAILED, EXIT_OK
from ..errors import ConfigError

ENV_SERVER = "SHAMAN_SERVER_URL"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check",
        help="say whether the Shaman server is reachable and has Shaman enabled",
        description="Ask the server once whether it is reachable, is a Flamenco Manager "
        "and has Shaman enabled. Exit 0 when all three hold, else 1.",
    )
    p.add_argument("--server", metavar="URL",
                   help=f"the Flamenco Manager's URL (default: ${ENV_SERVER})")
    p.add_argument("--json", action="store_true", help="print the answer as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..shaman.client import ShamanClient

    server = (args.server or os.environ.get(ENV_SERVER, "")).strip()
    if not server:
        raise ConfigError(
            f"No Shaman server given: pass --server URL or set the environment variable "
            f"{ENV_SERVER}."
        )
    client = ShamanClient(server)
    try:
        answer = client.check()
    finally:
        client.close()
    if args.json:
        print(json.dumps({
            "server": client.base_url,
            "ok": answer.ok,
            "reachable": answer.reachable,
            "is_manager": answer.is_manager,
            "shaman_enabled": answer.shaman_enabled,
            "message": answer.message,
        }, indent=2))
    else:
        print(answer.message)
        if not answer.ok:
            print(f"  reachable: {'yes' if answer.reachable else 'no'}; "
                  f"a Flamenco Manager: {'yes' if answer.is_manager else 'no'}; "
                  f"Shaman enabled: {'yes' if answer.shaman_enabled else 'no'}")
    return EXIT_OK if answer.ok else EXIT_FAILED
