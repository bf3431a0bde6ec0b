"""``python -m shaman_addon submit FILE.blend``: the pipeline on the command line.

The submission runs on a worker thread so the main thread can draw progress and turn
Ctrl-C into a clean cancel (connections shut, no checkout, no traceback, exit 130).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from ..app.exit_codes import EXIT_CANCELLED, EXIT_FAILED, EXIT_MISSING, EXIT_OK, EXIT_USAGE
from ..app.user_paths import default_cache_dir
from ..errors import Cancelled, ConfigError, MissingDependencies, ShamanError
from ..progress import Phase, ProgressEvent, drain
from ..shaman.client import ClientSettings
from ..submit.checkout_name import DEFAULT_TEMPLATE, PLACEHOLDERS, template_fields

ENV_SERVER = "SHAMAN_SERVER_URL"


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
                   help=f"the Flamenco Manager's URL (default: ${ENV_SERVER})")
    p.add_argument("--checkout-path", metavar="TEMPLATE", default=DEFAULT_TEMPLATE,
                   help=f"checkout path template (default {DEFAULT_TEMPLATE!r}; "
                   f"placeholders: {placeholders})")
    p.add_argument("--project-root", type=Path, metavar="DIR",
                   help="the project's top folder (default: found from the .blend)")
    p.add_argument("--jobs", type=int, default=4, metavar="N",
                   help="parallel uploads (default 4)")
    p.add_argument("--connections", type=int, default=1, metavar="N",
                   help="plain-http connections the small uploads share, each carrying "
                   "several requests at once (default 1)")
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


class ProgressPrinter:
    """A redrawn bar on a terminal; plain lines (phase changes, every few seconds) elsewhere."""

    def __init__(self, stream: TextIO, *, tty: bool, quiet: bool) -> None:
        self.stream = stream
        self.tty = tty
        self.quiet = quiet
        self._phase: Phase | None = None
        self._last_line = 0.0
        self._drawn = False

    def consume(self, events: queue.SimpleQueue[ProgressEvent], budget_s: float) -> None:
        """A terminal only needs the newest snapshot; a log wants every phase change."""
        if self.tty or self.quiet:
            drain(events, self.show, budget_s=budget_s)
            return
        while True:
            try:
                self.show(events.get_nowait())
            except queue.Empty:
                return

    def show(self, event: ProgressEvent) -> None:
        if self.quiet:
            return
        if self.tty:
            self._draw(event)
            return
        now = time.monotonic()
        if event.phase is not self._phase or now - self._last_line >= 2.0:
            self._phase = event.phase
            self._last_line = now
            print(f"[{event.fraction * 100:3.0f}%] {event.status_line()}", file=self.stream,
                  flush=True)

    def _draw(self, event: ProgressEvent) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        filled = int(event.fraction * 20)
        bar = "#" * filled + "-" * (20 - filled)
        text = f"[{bar}] {event.fraction * 100:3.0f}% {event.status_line()}"
        text = text[: max(10, width - 1)].ljust(max(10, width - 1))
        self.stream.write("\r" + text)
        self._drawn = True
        if event.phase.is_final:
            self.stream.write("\n")
            self._drawn = False
        self.stream.flush()

    def close(self) -> None:
        if self._drawn and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _options(args: argparse.Namespace) -> Any:
    from ..submit import SubmitOptions  # late: keeps `--help` fast

    server = args.server or os.environ.get(ENV_SERVER, "")
    if not server.strip():
        raise ConfigError(
            f"No Shaman server given: pass --server URL or set the environment variable "
            f"{ENV_SERVER}."
        )
    blend: Path = args.blend
    if not blend.is_file():
        raise ConfigError(f"{blend} is not a file; give the .blend file to submit.")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1 (got {args.jobs}).")
    if args.connections < 1:
        raise ConfigError(f"--connections must be at least 1 (got {args.connections}).")
    template_fields(args.checkout_path)
    return SubmitOptions(
        server_url=server.strip(),
        checkout_template=args.checkout_path,
        project_root=args.project_root,
        jobs=args.jobs,
        client_settings=ClientSettings(upload_connections=args.connections),
        dry_run=args.dry_run,
        fail_on_missing=args.fail_on_missing,
        cache_dir=args.cache_dir if args.cache_dir is not None else default_cache_dir(),
        app_info={
            "interface": "command line",
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
        },
    )


def _human(result: Any) -> list[str]:
    mb = 1e6
    if result.dry_run:
        lines = [
            f"Dry run: {result.files_total:,} files, {result.bytes_total / mb:,.1f} MB in total.",
            f"Would upload {result.files_uploaded:,} files, {result.bytes_uploaded / mb:,.1f} MB;"
            f" the server already has {result.files_already_stored:,} files, "
            f"{result.bytes_already_stored / mb:,.1f} MB.",
        ]
        lines += [f"  would upload: {name}" for name in result.to_upload]
        lines.append("Nothing was created (dry run).")
    else:
        lines = [
            f"Checkout: {result.checkout_path}",
            f"Workers open: {result.worker_blend_path}",
            f"Files: {result.files_total:,} ({result.bytes_total / mb:,.1f} MB); uploaded "
            f"{result.files_uploaded:,} ({result.bytes_uploaded / mb:,.1f} MB); already on the "
            f"server {result.files_already_stored:,} ({result.bytes_already_stored / mb:,.1f} MB).",
        ]
    for warning in result.warnings:
        lines.append(f"Warning: {warning}")
    return lines


def _print_missing(result: Any, stream: TextIO) -> None:
    if not result.missing:
        return
    print(f"MISSING: {len(result.missing)} dependencies are not on disk and were not sent:",
          file=stream)
    for m in result.missing:
        users = ", ".join(m.referenced_by) or "?"
        print(f"  {m.path}  (used by {users})", file=stream)


def run(args: argparse.Namespace) -> int:
    from ..submit import Submission

    options = _options(args)
    events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
    submission = Submission(args.blend, options, events=events)
    printer = ProgressPrinter(sys.stderr, tty=sys.stderr.isatty(), quiet=args.quiet)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = submission.run()
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        if not submission.cancel_event.is_set():
            print("\ncancelling...", file=sys.stderr, flush=True)
        submission.cancel()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    worker = threading.Thread(target=work, name="shaman-submit", daemon=True)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            printer.consume(events, budget_s=0.01)
        printer.consume(events, budget_s=1.0)
    finally:
        printer.close()
        if in_main:
            signal.signal(signal.SIGINT, previous)
    return _report(args, outcome)


def _report(args: argparse.Namespace, outcome: dict[str, Any]) -> int:
    error = outcome.get("error")
    if error is None:
        result = outcome["result"]
        if args.json:
            print(json.dumps(result.to_json(), indent=2))
        else:
            print("\n".join(_human(result)))
        _print_missing(result, sys.stderr)
        return EXIT_OK
    if isinstance(error, Cancelled):
        code = EXIT_CANCELLED
    elif isinstance(error, MissingDependencies):
        code = EXIT_MISSING
    elif isinstance(error, ConfigError):
        code = EXIT_USAGE
    elif isinstance(error, ShamanError):
        code = EXIT_FAILED
    else:
        raise error
    if args.json:
        print(json.dumps({"error": str(error), "error_type": type(error).__name__,
                          "exit_code": code}, indent=2))
    print(f"{'cancelled' if code == EXIT_CANCELLED else 'error'}: {error}", file=sys.stderr)
    return code
