"""Results, failures and server checks in words: one wording for every interface.

The command line's output, the lines Blender prints when it runs headless, the
operator's report and the panel's result box all come from here, so an artist and a TD
reading a farm log see the same sentences. The JSON forms (``--json``) are here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import Cancelled, JobNotSubmitted, ShamanError, error_text
from ..units import format_files
from .exit_codes import exit_code_for

if TYPE_CHECKING:
    from ..collect.plan import MissingFile
    from ..jobs.catalog import ManagerInfo
    from ..jobs.request import SubmittedJob
    from ..jobs.types import JobSetting
    from ..shaman.client import ServerCheck
    from ..submit import SubmitResult
    from .runner import Outcome


@dataclass(frozen=True)
class MissingRow:
    path: str
    referenced_by: str


@dataclass(frozen=True)
class ResultView:
    """What the result area shows for a ``SubmitResult`` (dry run or real)."""

    dry_run: bool
    checkout_path: str
    worker_path: str
    files_total: int
    total_text: str
    uploaded_text: str
    stored_text: str
    warnings: list[str] = field(default_factory=list)
    missing: list[MissingRow] = field(default_factory=list)

    @classmethod
    def of(cls, result: SubmitResult) -> ResultView:
        return cls(
            dry_run=bool(result.dry_run),
            checkout_path=str(result.checkout_path or ""),
            worker_path=str(result.worker_blend_path or ""),
            files_total=int(result.files_total),
            total_text=format_files(result.files_total, result.bytes_total),
            uploaded_text=format_files(result.files_uploaded, result.bytes_uploaded),
            stored_text=format_files(result.files_already_stored, result.bytes_already_stored),
            warnings=[str(w) for w in result.warnings],
            missing=[MissingRow(str(m.path), _users(m.referenced_by)) for m in result.missing],
        )


def _users(referenced_by: Iterable[str]) -> str:
    return ", ".join(str(r) for r in referenced_by)


def result_lines(result: SubmitResult) -> list[str]:
    """The result in a few lines (the missing files are listed by ``missing_lines``)."""
    view = ResultView.of(result)
    if result.shared_storage:
        lines = [f"No upload was needed: {view.worker_path} is in the Manager's shared "
                 "storage, and the render job renders it there."]
        if view.dry_run:
            lines.append("The render job was checked; nothing was submitted (dry run).")
    elif view.dry_run:
        lines = [
            f"Dry run: {view.total_text}; the server already has {view.stored_text}. "
            f"Would upload {view.uploaded_text}.",
            *(f"  would upload: {name}" for name in result.to_upload),
            "Nothing was created (dry run).",
        ]
    else:
        lines = [
            f"Checkout: {view.checkout_path}",
            f"Workers open: {view.worker_path}",
            f"In the checkout: {view.total_text}; uploaded {view.uploaded_text}; "
            f"already on the server {view.stored_text}.",
        ]
    if result.job is not None:
        lines.extend(job_lines(result.job))
    lines.extend(f"Warning: {w}" for w in view.warnings)
    return lines


def job_lines(job: SubmittedJob) -> list[str]:
    """The render job the Manager accepted: name, id, status, its page."""
    return [f"Render job: {job.name!r} ({job.type}), {job.status or 'submitted'}, id {job.id}",
            f"Job page: {job.url}"]


def report_line(result: SubmitResult) -> str:
    """The one line of an operator's report."""
    first = result_lines(result)[0]
    if result.dry_run:
        return first
    job = (f" Render job {result.job.id} is {result.job.status or 'submitted'}."
           if result.job is not None else "")
    if result.shared_storage:
        return f"{first}{job}"
    if job:
        return f"Submitted to Shaman. {first}.{job}"
    return f"Submitted to Shaman. {first}"


def missing_lines(missing: Sequence[MissingFile]) -> list[str]:
    """Missing dependencies, one line each with what uses them; [] when none."""
    if not missing:
        return []
    return [f"MISSING ({len(missing)}): used but not on disk:"] + [
        f"  {m.path} (used by {_users(m.referenced_by) or '?'})" for m in missing
    ]


def error_line(exc: BaseException) -> str:
    """A failure on a terminal: ``error: ...`` or ``cancelled: ...``."""
    word = "cancelled" if isinstance(exc, Cancelled | KeyboardInterrupt) else "error"
    text = error_text(exc) if not isinstance(exc, KeyboardInterrupt) else ""
    return f"{word}: {text}" if text else word


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """``--json``: the result's own JSON, or the error with its type and exit code."""
    if outcome.result is not None and outcome.error is None:
        return outcome.result.to_json()
    error = outcome.error or ShamanError("The submission ended without a result.")
    doc: dict[str, Any] = {
        "error": error_text(error),
        "error_type": type(error).__name__,
        "exit_code": exit_code_for(error),
    }
    if isinstance(error, JobNotSubmitted):
        doc["checkout_path"] = error.checkout_path
    return doc


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def check_lines(answer: ServerCheck) -> list[str]:
    """A server check's answer; the three findings spelled out when it is not ok."""
    lines = [answer.message]
    if not answer.ok:
        lines.append(
            f"  reachable: {_yes(answer.reachable)}; a Flamenco Manager: "
            f"{_yes(answer.is_manager)}; Shaman enabled: {_yes(answer.shaman_enabled)}"
        )
    return lines


def check_json(server: str, answer: ServerCheck) -> dict[str, Any]:
    return {
        "server": server,
        "ok": answer.ok,
        "reachable": answer.reachable,
        "is_manager": answer.is_manager,
        "shaman_enabled": answer.shaman_enabled,
        "message": answer.message,
    }


def _setting_line(s: JobSetting) -> str:
    kind = s.type.value + (f", {s.subtype.value}" if s.subtype.value else "")
    if s.choices:
        kind += f", one of {', '.join(s.choices)}"
    if s.minimum is not None or s.maximum is not None:
        low = "" if s.minimum is None else f"{s.minimum:g}"
        high = "" if s.maximum is None else f"{s.maximum:g}"
        kind += f", {low}..{high}"
    extra: list[str] = []
    if s.required:
        extra.append("required")
    if s.eval:
        extra.append("automatic unless set" if s.editable else "automatic")
    elif s.default is not None:
        extra.append(f"default {s.default!r}")
    if not s.visible.shown_to_artist:
        extra.append(f"not shown to artists ({s.visible.value})")
    tail = f"; {', '.join(extra)}" if extra else ""
    return f"    {s.key} ({kind}){tail}: {s.title}"


def job_types_lines(info: ManagerInfo) -> list[str]:
    """The Manager's job types and worker tags, for ``job-types``."""
    lines = [f"Flamenco Manager {info.version} at {info.url}: "
             f"{len(info.job_types)} job type(s)"]
    for job_type in info.job_types:
        lines.append(f"  {job_type.name}: {job_type.label}")
        lines.extend(_setting_line(s) for s in job_type.settings if s.key != "blendfile")
    tags = ", ".join(t.name for t in info.worker_tags) or "none (any worker)"
    lines.append(f"Worker tags: {tags}")
    return lines


def manager_info_json(info: ManagerInfo) -> dict[str, Any]:
    """``job-types --json``: the Manager's job types in its own JSON form, and its tags."""
    doc = info.to_json()
    doc.pop("format", None)
    return doc
