"""One submission: collect, hash, ask, upload, check out; every caller runs this path."""

from __future__ import annotations

from .pipeline import Submission, SubmitOptions, SubmitResult, Tuning

__all__ = ["Submission", "SubmitOptions", "SubmitResult", "Tuning"]
