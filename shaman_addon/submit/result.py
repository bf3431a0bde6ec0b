"""What a submission reports: the result, and the line it leaves in the history."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..collect.plan import MissingFile, OutsideFile, PackPlan
from ..errors import Cancelled, JobNotSubmitted
from ..jobs.request import SubmittedJob
from ..shaman.client import FileSpec, redact_url
from .contents import Key
from .history import append_history
from .options import SubmitOptions

log = logging.getLogger(__name__)


@dataclass
class SubmitResult:
    """What was sent and where the farm finds it.

    ``files_uploaded``/``bytes_uploaded`` count the contents THIS run sent (on a dry run:
    what it WOULD send); ``files_already_stored``/``bytes_already_stored`` count the plan
    files whose content the server had (or got from someone else meanwhile). Several
    files with the same content are sent once, so the two can add up to less than the
    totals.
    """

    checkout_path: str | None
    blend_checkout_path: str
    worker_blend_path: str | None
    files_total: int
    bytes_total: int
    files_uploaded: int
    bytes_uploaded: int
    files_already_stored: int
    bytes_already_stored: int
    missing: list[MissingFile]
    warnings: list[str]
    phase_seconds: dict[str, float]
    dry_run: bool
    to_upload: list[str] = field(default_factory=list)
    """Checkout paths of the files sent (or, on a dry run, that would be sent)."""
    job: SubmittedJob | None = None
    """The render job the Manager accepted (None: checkout only, or a dry run)."""
    shared_storage: bool = False
    """The Manager runs without Shaman and the .blend is in its shared storage: the job
    renders it where it is, nothing was uploaded (``worker_blend_path`` is the file)."""
    outside_project: list[OutsideFile] = field(default_factory=list)
    """Files sent (or, on a dry run, to send) from outside the project root."""

    def to_json(self) -> dict[str, Any]:
        return {
            "checkout_path": self.checkout_path,
            "blend_checkout_path": self.blend_checkout_path,
            "worker_blend_path": self.worker_blend_path,
            "files_total": self.files_total,
            "bytes_total": self.bytes_total,
            "files_uploaded": self.files_uploaded,
            "bytes_uploaded": self.bytes_uploaded,
            "files_already_stored": self.files_already_stored,
            "bytes_already_stored": self.bytes_already_stored,
            "missing": [m.to_json() for m in self.missing],
            "warnings": list(self.warnings),
            "phase_seconds": {k: round(v, 4) for k, v in self.phase_seconds.items()},
            "dry_run": self.dry_run,
            "to_upload": list(self.to_upload),
            "job": self.job.to_json() if self.job is not None else None,
            "shared_storage": self.shared_storage,
            "outside_project": [o.to_json() for o in self.outside_project],
        }


def build_result(plan: PackPlan, specs: list[FileSpec], *, sent: dict[Key, str],
                 checkout_path: str | None, warnings: list[str], dry_run: bool,
                 phase_seconds: dict[str, float]) -> SubmitResult:
    """The result for ``plan`` whose files have ``specs`` (in order); ``sent`` maps each
    content sent (or, on a dry run, to send) to a checkout path holding it."""
    stored = [spec.size for spec in specs if (spec.sha, spec.size) not in sent]
    worker = f"{{jobs}}/{checkout_path}/{plan.blend_checkout_path}" if checkout_path else None
    return SubmitResult(
        checkout_path=checkout_path,
        blend_checkout_path=plan.blend_checkout_path,
        worker_blend_path=worker,
        files_total=len(specs),
        bytes_total=sum(spec.size for spec in specs),
        files_uploaded=len(sent),
        bytes_uploaded=sum(size for _sha, size in sent),
        files_already_stored=len(stored),
        bytes_already_stored=sum(stored),
        missing=list(plan.missing),
        warnings=warnings,
        phase_seconds=phase_seconds,
        dry_run=dry_run,
        to_upload=sorted(sent.values()),
        outside_project=list(plan.outside_project),
    )


def record_history(options: SubmitOptions, blend: Path, *, plan: PackPlan | None,
                   result: SubmitResult | None, error: BaseException | None,
                   cache_hits: int, phase_seconds: dict[str, float]) -> None:
    """One line in the history file of the cache folder (none without a cache folder)."""
    if options.cache_dir is None:
        return
    if isinstance(error, Cancelled):
        status = "cancelled"
    elif error is not None:
        status = "failed"
    else:
        status = "done"
    record: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tool": "shaman-submitter",
        "tool_version": __version__,
        "app": dict(options.app_info),
        "server": redact_url(options.server_url),
        "blend": str(blend),
        "status": status,
        "error": str(error) if error is not None else None,
        "cache_hits": cache_hits,
        "phase_seconds": {k: round(v, 4) for k, v in phase_seconds.items()},
    }
    if result is not None:
        record.update(result.to_json())
        record.pop("to_upload", None)
    elif plan is not None:
        record["files_total"] = len(plan.files)
        record["bytes_total"] = plan.total_bytes
        record["missing"] = [m.to_json() for m in plan.missing]  # whole: words cut it short
    if isinstance(error, JobNotSubmitted):
        record["checkout_path"] = error.checkout_path
    try:
        append_history(Path(options.cache_dir), record)
    except OSError as exc:
        log.warning("could not append to the submission history: %s", exc)
