"""The command line, ``python -m shaman_addon``: one module per subcommand.

Each subcommand module has ``add_parser(subparsers)`` (its arguments, and ``func`` set
to its ``run(args) -> int``); ``main`` lists them. Conventions for every subcommand:
``--json`` prints one JSON document on stdout, logs and progress go to stderr, and the
exit codes are those of ``app.exit_codes``.
"""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
