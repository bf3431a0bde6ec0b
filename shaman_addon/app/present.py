"""Results, failures and server checks in words: one wording for every interface.

The command line's output, the lines Blender prints when it runs headless, the
operator's report and the panel's result box all come from here, so an artist and a TD
reading a farm log see the same sentences. The JSON forms (``--json``) are here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import Cancelled, ShamanError, error_text
from ..units import format_files
from .exit_codes import exit_code_for

if TYPE_CHECKING:
    from ..collect.plan import MissingFile
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
    if view.dry_run:
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
    lines.extend(f"Warning: {w}" for w in view.warnings)
    return lines


def report_line(result: SubmitResult) -> str:
    """The one line of an operator's report."""
    first = result_lines(result)[0]
    return first if result.dry_run else f"Submitted to Shaman. {first}"


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
    return {
        "error": error_text(error),
        "error_type": type(error).__name__,
        "exit_code": exit_code_for(error),
    }


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
