"""``python -m shaman_addon submit FILE.blend``: one submission on the command line.

The submission runs on a worker thread (``app.runner``) so the main thread can draw
progress and turn Ctrl-C into a clean cancel (connections shut, no checkout, no
traceback, exit 130). Options, wording and exit codes are the application layer's.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
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
from ..app.exit_codes import EXIT_TERMINATED
from ..app.present import NO_CACHE_WARNING
from ..app.user_paths import default_cache_dir
from ..errors import ConfigError, ShamanError
from ..jobs.request import DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY
from ..progress import Phase
from ..submit.checkout_name import DEFAULT_TEMPLATE, PLACEHOLDERS
from .progress_printer import ProgressPrinter

if TYPE_CHECKING:
    from ..app.runner import SubmissionRunner
    from ..jobs.request import JobRequest
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
    add_allow_argument(p)
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="checksum cache and history folder (default: "
                   "$XDG_CACHE_HOME/shaman-submitter or ~/.cache/shaman-submitter)")
    add_job_arguments(p)
    p.set_defaults(func=run)


def add_allow_argument(p: Any) -> None:
    """The one way to send files from credential stores (``~/.ssh``, ``~/.aws``...)."""
    p.add_argument("--allow-credential-files", action="store_true",
                   help="send dependencies that lie in credential stores (~/.ssh, ~/.gnupg, "
                   "~/.aws, ~/.netrc, keyrings...) instead of refusing them")


def add_job_arguments(p: Any) -> None:
    """The render job's flags (see ``job-types`` for the Manager's job types)."""
    g = p.add_argument_group(
        "render job", "after the checkout, submit a Flamenco job that renders it; the job "
        "type's settings are computed from the .blend where they can be (see job-types)")
    g.add_argument("--job-type", metavar="NAME",
                   help="the Manager's job type, e.g. simple-blender-render (default: "
                   "checkout only, no job)")
    g.add_argument("--job-name", metavar="TEMPLATE",
                   help="the job's name, with the checkout path's placeholders (default: "
                   "the blend's name)")
    g.add_argument("--priority", type=int, metavar="N",
                   help=f"the job's priority, {MIN_PRIORITY}-{MAX_PRIORITY} "
                   f"(default {DEFAULT_PRIORITY})")
    g.add_argument("--worker-tag", metavar="NAME",
                   help="only workers with this tag render it (default: any worker)")
    g.add_argument("--paused", action="store_true", help="submit the job paused")
    g.add_argument("--set", dest="assignments", action="append", default=[],
                   metavar="KEY=VALUE", help="a job setting's value, typed as the job type "
                   "says; wins over what is computed from the .blend (repeat for more)")
    g.add_argument("--refresh-job-types", action="store_true",
                   help="read the Manager's job types and worker tags again instead of "
                   "the cached ones")


def _job_flags_without_type(args: argparse.Namespace) -> list[str]:
    given = [("--job-name", args.job_name is not None), ("--priority", args.priority is not None),
             ("--worker-tag", args.worker_tag is not None), ("--paused", args.paused),
             ("--set", bool(args.assignments)),
             ("--refresh-job-types", args.refresh_job_types)]
    return [flag for flag, on in given if on]


def job_request(args: argparse.Namespace, server: str, chosen: settings.Settings,
                names: settings.Names, cache_dir: Path | None) -> JobRequest | None:
    """The render job the flags ask for (None without ``--job-type``): the Manager's job
    type (cached, or read), ``--set`` typed by it, the rest computed from the .blend."""
    if not args.job_type:
        stray = _job_flags_without_type(args)
        if stray:
            raise ConfigError(f"{', '.join(stray)} only apply to a render job; add "
                              "--job-type NAME (python -m shaman_addon job-types lists them).")
        return None
    from ..app import jobs
    from ..jobs.scene_blend import command_line_evaluator
    from ..jobs.values import parse_assignments

    info = jobs.manager_info(server, chosen, names, cache_dir=cache_dir,
                             refresh=args.refresh_job_types)
    if info.job_type(args.job_type) is None and not args.refresh_job_types:
        # Added on the Manager since the cache was made? Read them again, once.
        info = jobs.manager_info(server, chosen, names, cache_dir=cache_dir, refresh=True)
    job_type = info.job_type(args.job_type)
    given = parse_assignments(job_type, args.assignments) if job_type is not None else {}
    choice = jobs.JobChoice(
        job_type=args.job_type, name=args.job_name or "",
        priority=DEFAULT_PRIORITY if args.priority is None else args.priority,
        worker_tag=args.worker_tag or "", paused=args.paused, given=given)
    return jobs.prepare_job(info, choice, blend=args.blend,
                            evaluate=command_line_evaluator(args.blend))


def _options(args: argparse.Namespace) -> SubmitOptions:
    server, names = settings.command_line_server(args.server)
    chosen = settings.Settings(
        server_url=server,
        checkout_template=args.checkout_path,
        project_root=args.project_root,
        jobs=args.jobs,
        connections=args.connections,
        pipelining=args.pipelining,
        fail_on_missing=args.fail_on_missing,
        allow_credential_files=args.allow_credential_files,
    )
    cache_dir = args.cache_dir if args.cache_dir is not None else default_cache_dir()
    if cache_dir is None:
        print(NO_CACHE_WARNING, file=sys.stderr)
    run = settings.Run(
        cache_dir=cache_dir,
        dry_run=args.dry_run,
        app_info={
            "interface": "command line",
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
        },
    )
    args.blend = settings.command_line_blend(args.blend)
    job = job_request(args, server, chosen, names, cache_dir)
    return settings.submit_options(chosen, dataclasses.replace(run, job=job), names)


def _refused(args: argparse.Namespace, error: ShamanError) -> int:
    """An error before the submission starts (settings, the job): one sentence, and the
    error document with --json."""
    from ..app.runner import Outcome

    outcome = Outcome(error=error)
    if args.json:
        print(json.dumps(present.outcome_json(outcome), indent=2))
    print(present.error_line(error), file=sys.stderr)
    return outcome.exit_code


def _notes(args: argparse.Namespace) -> None:
    """What the command changed from what was typed, said before it starts."""
    notes = (present.checkout_path_note(args.checkout_path, args.blend.stem),
             present.outside_root_note(args.blend, args.project_root))
    for note in notes:
        if note:
            print(note, file=sys.stderr)


@contextlib.contextmanager
def _ctrl_c_cancels(runner: SubmissionRunner, terminated: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM ask the runner to cancel (once, saying so) instead of raising;
    SIGTERM also sets ``terminated`` (the exit code is 143, not 130)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGTERM:
            terminated.set()
        if runner.cancel():
            print("\ncancelling...", file=sys.stderr, flush=True)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace) -> int:
    from ..app.runner import SubmissionRunner, follow

    try:
        options = _options(args)
    except ShamanError as exc:
        return _refused(args, exc)
    _notes(args)
    runner = SubmissionRunner(args.blend, options)
    printer = ProgressPrinter(sys.stderr, tty=sys.stderr.isatty(), quiet=args.quiet)

    def on_tick(finished: bool) -> None:
        printer.consume(runner.events, budget_s=1.0 if finished else 0.01)

    terminated = threading.Event()
    try:
        with _ctrl_c_cancels(runner, terminated):
            outcome = follow(runner, on_tick, poll_s=POLL_S)
    finally:
        printer.close()
    error = outcome.error
    if error is not None and not isinstance(error, ShamanError):
        raise error  # a bug: its traceback is worth more than a sentence
    code = (EXIT_TERMINATED if terminated.is_set() and outcome.cancelled
            else outcome.exit_code)
    if args.json:
        doc = present.outcome_json(outcome)
        if "exit_code" in doc:
            doc["exit_code"] = code
        print(json.dumps(doc, indent=2))
    if outcome.result is not None:
        full = present.FullLists.of(runner.options, json_flag=True)
        if not args.json:
            print("\n".join(present.result_lines(outcome.result, full)))
        for line in present.missing_lines(outcome.result.missing, full):
            print(line, file=sys.stderr)
    if error is not None:
        full = present.FullLists.of(runner.options, json_flag=True)
        print(present.error_line(error, full), file=sys.stderr)
        if printer.last_working_phase is Phase.UPLOADING and not outcome.cancelled:
            print(present.KEPT_UPLOADS, file=sys.stderr)
    return code
