"""One submission: collect, hash, ask, upload, check out; every caller runs this path.

``Submission`` (in ``orchestrator``) is the entry; ``SubmitOptions`` and ``Tuning`` say
what to do, ``SubmitResult`` what was done. ``ARCHITECTURE.md`` walks through the stages.
"""

from __future__ import annotations

from .options import SubmitOptions, Tuning
from .orchestrator import CACHE_FILE_NAME, Submission
from .result import SubmitResult

__all__ = ["CACHE_FILE_NAME", "Submission", "SubmitOptions", "SubmitResult", "Tuning"]
