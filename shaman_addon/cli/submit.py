"""``python -m shaman_addon submit FILE.blend``: one submission on the command line.

The submission runs on a worker thread (``app.runner``) so the main thread can draw
progress and turn Ctrl-C into a clean cancel (connections shut, no checkout, no
traceback, exit 130). Options, wording and exit codes are the application layer's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..app import present, settings
from ..app.user_paths import default_cache_dir
from ..errors import ConfigError, ShamanError
from ..submit.checkout_name import DEFAULT_TEMPLATE, PLACEHOLDERS
from .progress_printer import ProgressPrinter

if TYPE_CHECKING:
    from ..app.runner import SubmissionRunner
    from ..submit import SubmitOptions

POLL_S = 0.1
"""How often the main thread shows progress while the worker runs."""


def add_parser(subparsers: Any) -> None:
    placeholders = ", ".join("{" + k + "}" for k in PLACEHOLDERS)
    p = subparsers.add_parser(
        "submit",
        help="send a .blend and its dependencies to a Shaman server",
        description="Send a .blend file and every file it depends on to a Shaman server "
        "and create a checkout the render farm can open.",
    )
    p.add_argument("blend", type=Path, metavar="FILE.blend", help="the .blend file to submit")
    p.add_argument("--server", metavar="URL",
                   help=f"the Flamenco Manager's URL (default: ${settings.ENV_SERVER_URL})")
    p.add_argument("--checkout-path", metavar="TEMPLATE", default=DEFAULT_TEMPLATE,
                   help=f"checkout path template (default {DEFAULT_TEMPLATE!r}; "
                   f"placeholders: {placeholders})")
    p.add_argument("--project-root", type=Path, metavar="DIR",
                   help="the project's top folder (default: found from the .blend)")
    p.add_argument("--jobs", type=int, default=settings.DEFAULT_JOBS, metavar="N",
                   help=f"parallel uploads (default {settings.DEFAULT_JOBS})")
    p.add_argument("--connections", type=int, default=settings.DEFAULT_CONNECTIONS,
                   metavar="N", help="pipelined connections the small uploads share on a "
                   "plain-http server reached without a proxy, each carrying many requests "
                   f"at once (default {settings.DEFAULT_CONNECTIONS})")
    p.add_argument("--no-pipelining", dest="pipelining", action="store_false",
                   help="send every upload through the ordinary HTTP client, one request "
                   "per connection at a time (for a network device that mishandles "
                   "pipelined requests)")
    p.add_argument("--dry-run", action="store_true",
                   help="collect, hash and ask the server, print what would be uploaded, "
                   "create nothing")
    p.add_argument("--fail-on-missing", action="store_true",
                   help="stop (exit 3) before uploading anything when dependencies are missing")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="checksum cache and history folder (default: "
                   "$XDG_CACHE_HOME/shaman-submitter or ~/.cache/shaman-submitter)")
    p.set_defaults(func=run)


def _options(args: argparse.Namespace) -> SubmitOptions:
    server, names = settings.command_line_server(args.server)
    options = settings.submit_options(
        settings.Settings(
            server_url=server,
            checkout_template=args.checkout_path,
            project_root=args.project_root,
            jobs=args.jobs,
            connections=args.connections,
            pipelining=args.pipelining,
            fail_on_missing=args.fail_on_missing,
        ),
        settings.Run(
            cache_dir=args.cache_dir if args.cache_dir is not None else default_cache_dir(),
            dry_run=args.dry_run,
            app_info={
                "interface": "command line",
                "python": platform.python_version(),
                "platform": platform.platform(terse=True),
            },
        ),
        names,
    )
    if not args.blend.is_file():
        raise ConfigError(f"{args.blend} is not a file; give the .blend file to submit.")
    return options


@contextlib.contextmanager
def _ctrl_c_cancels(runner: SubmissionRunner) -> Iterator[None]:
    """Ctrl-C asks the runner to cancel (once, saying so) instead of raising."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        if runner.cancel():
            print("\ncancelling...", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run(args: argparse.Namespace) -> int:
    from ..app.runner import SubmissionRunner, follow

    runner = SubmissionRunner(args.blend, _options(args))
    printer = ProgressPrinter(sys.stderr, tty=sys.stderr.isatty(), quiet=args.quiet)

    def on_tick(finished: bool) -> None:
        printer.consume(runner.events, budget_s=1.0 if finished else 0.01)

    try:
        with _ctrl_c_cancels(runner):
            outcome = follow(runner, on_tick, poll_s=POLL_S)
    finally:
        printer.close()
    error = outcome.error
    if error is not None and not isinstance(error, ShamanError):
        raise error  # a bug: its traceback is worth more than a sentence
    if args.json:
        print(json.dumps(present.outcome_json(outcome), indent=2))
    if outcome.result is not None:
        if not args.json:
            print("\n".join(present.result_lines(outcome.result)))
        for line in present.missing_lines(outcome.result.missing):
            print(line, file=sys.stderr)
    if error is not None:
        print(present.error_line(error), file=sys.stderr)
    return outcome.exit_code
