"""Exit codes of the command line and of headless runs, and which error gives which.

One table for every caller: ``0`` done, ``1`` failed, ``2`` a usage or settings error,
``3`` stopped on missing dependencies, ``130`` cancelled (as a shell reports Ctrl-C),
``143`` terminated (SIGTERM: cancelled and cleaned up the same way).
"""

from __future__ import annotations

from ..errors import Cancelled, ConfigError, MissingDependencies, ShamanError, Terminated

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_MISSING = 3
EXIT_CANCELLED = 130
EXIT_TERMINATED = 143


def exit_code_for(error: BaseException | None) -> int:
    """The exit code for a run that ended with ``error`` (None: it succeeded).

    Anything that is not one of ours is a failure too; the caller decides whether to
    show its traceback.
    """
    if error is None:
        return EXIT_OK
    if isinstance(error, Terminated):
        return EXIT_TERMINATED
    if isinstance(error, Cancelled | KeyboardInterrupt):
        return EXIT_CANCELLED
    if isinstance(error, MissingDependencies):
        return EXIT_MISSING
    if isinstance(error, ConfigError):
        return EXIT_USAGE
    if isinstance(error, ShamanError):
        return EXIT_FAILED
    return EXIT_FAILED
