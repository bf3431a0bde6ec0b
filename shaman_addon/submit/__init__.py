"""One submission: collect, hash, ask, upload, check out; every caller runs this path.

``Submission`` (in ``orchestrator``) is the entry; ``SubmitOptions`` and ``Tuning`` say
what to do, ``SubmitResult`` what was done. ``HOW-IT-WORKS.md`` walks through the stages.

The names are imported on first use: the orchestration pulls in ``requests`` and BAT,
which a command that only parses its arguments, or only lists dependencies, never needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .options import SubmitOptions, Tuning
    from .orchestrator import CACHE_FILE_NAME, Submission
    from .result import SubmitResult

_WHERE = {
    "CACHE_FILE_NAME": "orchestrator",
    "Submission": "orchestrator",
    "SubmitOptions": "options",
    "SubmitResult": "result",
    "Tuning": "options",
}

__all__ = ["CACHE_FILE_NAME", "Submission", "SubmitOptions", "SubmitResult", "Tuning"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
