"""``python -m shaman_addon``: the parser of every subcommand, and the one way errors end."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import __version__
from ..app.exit_codes import exit_code_for
from ..app.present import error_line
from ..errors import ShamanError
from . import check, deps, job_types, submit

SUBCOMMANDS = (deps, submit, check, job_types)
QUIET_LOGGERS = ("urllib3", "shaman_addon.shaman.retry")


def program_name() -> str:
    """``shaman-submit`` when run as the installed command, else ``python -m shaman_addon``."""
    called = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "shaman-submit" if called.startswith("shaman-submit") else "python -m shaman_addon"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name(),
        description="Send a .blend file and everything it depends on to a Shaman server.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    for sub in subparsers.choices.values():
        # -v after the subcommand too; SUPPRESS keeps a -v given before it
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                         help="debug logging on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        # Each retry is logged with its full URL; when they run out, the failure's own
        # sentence says it once (with -v every line is there).
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        return int(args.func(args))
    except (ShamanError, KeyboardInterrupt) as exc:
        print(error_line(exc), file=sys.stderr)
        return exit_code_for(exc)
