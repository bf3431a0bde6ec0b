"""The command line: ``python -m shaman_addon {deps,submit,check}``.

Each subcommand lives in its own ``cmd_*.py`` module exposing ``register(subparsers)``,
which adds its parser and sets ``func`` to a ``run(args) -> int``. Conventions for every
subcommand: ``--json`` prints one JSON document on stdout, logs and progress go to stderr,
exit 0 on success, 1 on failure, 2 on a usage error, 3 stopped on missing dependencies,
130 cancelled.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .errors import ConfigError, ShamanError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING = 3
EXIT_CANCELLED = 130

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shaman_addon",
        description="Send a .blend file and everything it depends on to a Shaman server.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in ("cmd_deps", "cmd_submit", "cmd_check"):
        try:
            module = __import__(f"{__package__}.{module_name}", fromlist=["register"])
        except ModuleNotFoundError as exc:  # a subcommand not built yet
            if exc.name != f"{__package__}.{module_name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ShamanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return EXIT_CANCELLED
