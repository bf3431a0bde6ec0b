"""``python -m shaman_addon``: the parser of every subcommand, and the one way errors end."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .. import __version__
from ..app.exit_codes import exit_code_for
from ..app.present import error_line
from ..errors import ShamanError, Terminated
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


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated("terminated (SIGTERM)")


def terminate_like_ctrl_c() -> None:
    """SIGTERM raises ``Terminated`` (a KeyboardInterrupt) on the main thread, so what
    runs cleans up as after Ctrl-C (``submit`` turns it into a cancel of its own)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


def main(argv: Sequence[str] | None = None) -> int:
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    try:
        terminate_like_ctrl_c()
        parser = build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        if not args.verbose:
            # Each retry is logged with its full URL; when they run out, the failure's
            # own sentence says it once (with -v every line is there).
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
        return int(args.func(args))
    except (ShamanError, KeyboardInterrupt) as exc:  # Ctrl-C or SIGTERM at any moment
        print(error_line(exc), file=sys.stderr)
        return exit_code_for(exc)
    finally:
        # Quieting is for this command only: a caller in the same process (a script,
        # the tests) keeps its own logging.
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
