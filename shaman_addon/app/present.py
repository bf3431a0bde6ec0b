"""Results, failures and server checks in words: one wording for every interface.

The command line's output, the lines Blender prints when it runs headless, the
operator's report and the panel's result box all come from here, so an artist and a TD
reading a farm log see the same sentences. The JSON forms (``--json``) are here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import (
    Cancelled,
    MissingDependencies,
    ShamanError,
    Terminated,
    error_text,
)
from ..units import format_count, format_files
from ..untrusted import shown

if TYPE_CHECKING:
    from ..collect.plan import MissingFile, OutsideFile
    from ..jobs.catalog import ManagerInfo
    from ..jobs.request import SubmittedJob
    from ..jobs.types import JobSetting
    from ..shaman.client import ServerCheck
    from ..submit import SubmitOptions, SubmitResult


NO_CACHE_WARNING = (
    "warning: there is no home folder (HOME is not set and the user has no entry in the "
    "password database), so this run goes without the checksum cache, the job-type cache "
    "and the history; pass --cache-dir DIR or set XDG_CACHE_HOME to keep them.")
"""Said when ``user_paths.default_cache_dir`` finds no home folder."""


@dataclass(frozen=True)
class FullLists:
    """Where the whole of a list cut short in words can be read: the history file (when
    the run writes one) and, on the command line, ``--json``."""

    history: Path | None = None
    json_flag: bool = False

    @classmethod
    def of(cls, options: SubmitOptions, *, json_flag: bool) -> FullLists:
        from ..submit.history import HISTORY_FILE_NAME

        cache = options.cache_dir
        return cls(Path(cache) / HISTORY_FILE_NAME if cache is not None else None, json_flag)

    def words(self, *, in_history: bool = True) -> str:
        places = []
        if in_history and self.history is not None:
            places.append(f"the history file {shown(str(self.history), PATH_LIMIT)}")
        if self.json_flag:
            places.append("the output of --json")
        return " and ".join(places) or (
            "the command line's JSON (python -m shaman_addon submit FILE.blend --dry-run --json)")


LIST_SHOWN = 20
"""Entries of a long list named in words, in every interface (missing, refused and outside
files, warnings, files to upload); the rest is counted, and ``FullLists`` says where the
whole list is. Blender stores and draws no more than these."""


def more_lines(total: int, full: FullLists, *, in_history: bool = True) -> list[str]:
    """``... and 9,980 more: the full list is in ...`` for a list of ``total`` entries
    cut to ``LIST_SHOWN``; [] when nothing was left out."""
    if total <= LIST_SHOWN:
        return []
    return [f"... and {format_count(total - LIST_SHOWN)} more: the full list is in "
            f"{full.words(in_history=in_history)}"]


@dataclass(frozen=True)
class MissingRow:
    path: str
    referenced_by: str


@dataclass(frozen=True)
class ResultView:
    """What the result area shows for a ``SubmitResult`` (dry run or real): the first
    ``LIST_SHOWN`` warnings and missing files, the counts, and where the rest is."""

    dry_run: bool
    checkout_path: str
    worker_path: str
    files_total: int
    total_text: str
    uploaded_text: str
    stored_text: str
    warnings: list[str] = field(default_factory=list)
    missing: list[MissingRow] = field(default_factory=list)
    missing_total: int = 0
    more_missing: str = ""
    more_warnings: str = ""

    @classmethod
    def of(cls, result: SubmitResult, full: FullLists = FullLists()) -> ResultView:
        """Its cost does not grow with the lists: Blender's main thread makes it."""
        outside = outside_warnings(result.outside_project, sent=not result.dry_run,
                                   full=full)
        warnings = [*outside, *result.warnings[:LIST_SHOWN]][:LIST_SHOWN]  # outside: never cut
        return cls(
            dry_run=bool(result.dry_run),
            checkout_path=shown(result.checkout_path or "", PATH_LIMIT),
            worker_path=shown(result.worker_blend_path or "", PATH_LIMIT),
            files_total=int(result.files_total),
            total_text=format_files(result.files_total, result.bytes_total),
            uploaded_text=format_files(result.files_uploaded, result.bytes_uploaded),
            stored_text=format_files(result.files_already_stored, result.bytes_already_stored),
            warnings=[shown(w, LINE_LIMIT) for w in warnings],
            missing=[MissingRow(shown(m.path, PATH_LIMIT), _users(m.referenced_by))
                     for m in result.missing[:LIST_SHOWN]],
            missing_total=len(result.missing),
            more_missing="".join(more_lines(len(result.missing), full)),
            more_warnings="".join(more_lines(len(result.warnings) + len(outside), full)),
        )


PATH_LIMIT = 1000
"""Characters of one path shown (paths come from .blend files: escaped, see untrusted)."""
LINE_LIMIT = 4000
"""Characters of one error line shown."""


def _users(referenced_by: Iterable[str]) -> str:
    return ", ".join(shown(r, PATH_LIMIT) for r in referenced_by)


def result_lines(result: SubmitResult, full: FullLists = FullLists()) -> list[str]:
    """The result in a few lines (the missing files are listed by ``missing_lines``)."""
    view = ResultView.of(result, full)
    if result.shared_storage:
        lines = [f"No upload was needed: {view.worker_path} is in the Manager's shared "
                 "storage, and the render job renders it there."]
        if view.dry_run:
            lines.append("The render job was checked; nothing was submitted (dry run).")
    elif view.dry_run:
        lines = [
            f"Dry run: {view.total_text}; the server already has {view.stored_text}"
            f"{_same_content(result)}. Would upload {view.uploaded_text}.",
            *(f"  would upload: {shown(name, PATH_LIMIT)}"
              for name in result.to_upload[:LIST_SHOWN]),
            *(f"  {line}" for line in more_lines(len(result.to_upload), full,
                                                 in_history=False)),
            "Nothing was created (dry run).",
        ]
    else:
        lines = [
            f"Checkout: {view.checkout_path}",
            f"Workers open: {view.worker_path}",
            f"In the checkout: {view.total_text}; uploaded {view.uploaded_text}; "
            f"already on the server {view.stored_text}{_same_content(result)}.",
        ]
    if result.job is not None:
        lines.extend(job_lines(result.job))
    lines.extend(f"Warning: {w}" for w in view.warnings)
    if view.more_warnings:
        lines.append(f"Warnings: {view.more_warnings}")
    return lines


def _same_content(result: SubmitResult) -> str:
    """``; 1 file has the same content as another (sent once)``: the files the totals
    count that are neither uploaded nor already stored, so the numbers add up."""
    same = result.files_total - result.files_uploaded - result.files_already_stored
    if same <= 0:
        return ""
    has = "file has" if same == 1 else "files have"
    return f"; {same} {has} the same content as another (sent once)"


def job_lines(job: SubmittedJob) -> list[str]:
    """The render job the Manager accepted: name, id, status, its page."""
    return [f"Render job: '{shown(job.name)}' ({shown(job.type)}), "
            f"{shown(job.status or 'submitted')}, id {shown(job.id)}",
            f"Job page: {shown(job.url, PATH_LIMIT)}"]


def report_line(result: SubmitResult) -> str:
    """The one line of an operator's report."""
    first = result_lines(result)[0]
    if result.dry_run:
        return first
    job = (f" Render job {shown(result.job.id)} is "
           f"{shown(result.job.status or 'submitted')}."
           if result.job is not None else "")
    if result.shared_storage:
        return f"{first}{job}"
    if job:
        return f"Submitted to Shaman. {first}.{job}"
    return f"Submitted to Shaman. {first}"


MAX_OUTSIDE_NAMED = 10
"""Files from outside the project named in the warning (the JSON lists them all)."""


def _outside_name(o: OutsideFile) -> str:
    via = f" -> {o.target}" if o.target != o.path else ""
    return f"{o.path}{via} (used by {_users(o.referenced_by) or '?'})"


def outside_warnings(outside: Sequence[OutsideFile], *, sent: bool,
                     full: FullLists = FullLists()) -> list[str]:
    """One warning naming the files from outside the project root (symlink targets
    resolved) and what uses them; [] when none."""
    if not outside:
        return []
    verb = "were sent" if sent else "would be sent"
    named = "; ".join(_outside_name(o) for o in outside[:MAX_OUTSIDE_NAMED])
    more = (f"; and {format_count(len(outside) - MAX_OUTSIDE_NAMED)} more (all listed in "
            f"{full.words()})" if len(outside) > MAX_OUTSIDE_NAMED else "")
    noun = "file" if len(outside) == 1 else "files"
    return [f"{format_count(len(outside))} {noun} from outside the project folder {verb}: "
            f"{named}{more}"]


def refused_lines(refused: Sequence[OutsideFile], full: FullLists = FullLists()
                  ) -> list[str]:
    """Credential files left out (``deps``), with what uses them; [] when none."""
    if not refused:
        return []
    from ..collect.sensitive import ALLOW_HOW

    return [f"REFUSED ({format_count(len(refused))}): in credential stores, never sent; "
            f"{ALLOW_HOW}:",
            *(f"  {_outside_name(o)} [{o.credential_store}]" for o in refused[:LIST_SHOWN]),
            *(f"  {line}" for line in more_lines(len(refused), full))]


def missing_lines(missing: Sequence[MissingFile], full: FullLists = FullLists()
                  ) -> list[str]:
    """Missing dependencies, the first ``LIST_SHOWN`` with what uses them (and why it
    cannot be sent, when it is there but not readable or a system file), then how many
    more and where they are all listed; [] when none."""
    if not missing:
        return []
    from ..collect.plan import NOT_ON_DISK

    plain = all(m.reason == NOT_ON_DISK for m in missing)
    what = "not on disk" if plain else "not on disk, not readable or not a file"
    return [f"MISSING ({format_count(len(missing))}): used but {what}:", *(
        f"  {shown(m.path, PATH_LIMIT)} ({_why(m)}used by {_users(m.referenced_by) or '?'})"
        for m in missing[:LIST_SHOWN]), *(f"  {line}" for line in more_lines(len(missing), full))]


def _why(m: MissingFile) -> str:
    from ..collect.plan import NOT_ON_DISK

    return "" if m.reason == NOT_ON_DISK else f"{m.reason}; "


def failure_text(exc: BaseException, full: FullLists = FullLists()) -> str:
    """An error's sentence; for missing files (the sentence names ten), where every
    one of them is listed."""
    text = error_text(exc)
    if isinstance(exc, MissingDependencies) and len(exc.missing) > 1:
        text += f" Every missing file is listed in {full.words()}."
    return text


def error_line(exc: BaseException, full: FullLists = FullLists()) -> str:
    """A failure on a terminal: ``error: ...`` or ``cancelled: ...``."""
    word = "cancelled" if isinstance(exc, Cancelled | KeyboardInterrupt) else "error"
    if isinstance(exc, Terminated):
        return f"{word}: {exc}"
    text = (shown(failure_text(exc, full), LINE_LIMIT)
            if not isinstance(exc, KeyboardInterrupt) else "")
    return f"{word}: {text}" if text else word


NO_RESULT = "The submission ended without a result."
"""The error of an outcome with neither a result nor an error (never expected)."""

KEPT_UPLOADS = ("Files uploaded before the failure stay on the server: submitting again "
                "sends only what it still lacks.")
"""Said after a failure in the middle of the upload."""


def checkout_path_note(template: str, blend_name: str) -> str | None:
    """A sentence when sanitising changes the checkout path the template gives (None when
    it does not), so '../../etc' becoming 'etc' is said, not silent."""
    from datetime import datetime

    from ..submit.checkout_name import render_checkout_name, template_values

    now = datetime.now()
    try:
        raw = template.format(**template_values(blend_name, now=now))
        made = render_checkout_name(template, blend_name=blend_name, now=now)
    except (ShamanError, KeyError, ValueError, IndexError):
        return None  # the submission itself says what is wrong with the template
    if raw == made:
        return None
    return (f"note: the checkout path {raw!r} from --checkout-path became {made!r}: a "
            "checkout path must be a relative path inside the Manager's job storage "
            "(no '..', no leading '/', not empty).")


def outside_root_note(blend: Path, project_root: Path | None) -> str | None:
    """A warning when ``--project-root`` does not hold the .blend (it is then sent under
    ``_outside_project/``); None when it does or none was given."""
    if project_root is None:
        return None
    if blend.resolve().is_relative_to(project_root.resolve()):
        return None
    return (f"warning: {blend} is not inside the project root {project_root}; it and every "
            "file outside that root go under _outside_project/ in the checkout. Give the "
            "folder that holds the .blend as --project-root.")


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


def _how_words(setting: JobSetting) -> str:
    from .jobs import how_submit_fills

    how, reads = how_submit_fills(setting)
    if how == "submission":
        return "set by the submission (the .blend in the checkout)"
    if how == "computed":
        return "computed from the .blend"
    if how == "default":
        return f"default {setting.default!r}"
    if how == "optional":
        return "optional"
    why = f" (reads {', '.join(reads)}, which only Blender knows)" if reads else " (required)"
    return f"needs --set {setting.key}=VALUE{why}"


def _setting_lines(setting: JobSetting) -> list[str]:
    from ..jobs.values import expected

    seen = "shown to the artist" if setting.visible.shown_to_artist else "not shown"
    flags = [f"{setting.visible.value}: {seen}"]
    if setting.required:
        flags.append("required")
    if not setting.editable:
        flags.append("not editable")
    lines = [f"  {setting.key}: {expected(setting)}; {'; '.join(flags)}",
             f"      command line: {_how_words(setting)}"]
    if setting.eval:
        lines.append(f"      automatic value: {setting.eval}")
    if setting.description:
        lines.append(f"      {setting.description}")
    return lines


def job_types_lines(info: ManagerInfo) -> list[str]:
    """``job-types``: the Manager's job types and worker tags in words."""
    lines = [f"Job types of the Manager at {info.url} (Flamenco {info.version}):"]
    for job_type in info.job_types:
        about = f": {job_type.description}" if job_type.description else ""
        lines.append(f"{job_type.name} ({job_type.label}){about}")
        for setting in job_type.settings:
            lines.extend(_setting_lines(setting))
    tags = ", ".join(t.name for t in info.worker_tags) or "none"
    lines.append(f"Worker tags: {tags}")
    return [shown(line, LINE_LIMIT) for line in lines]  # names, labels: the Manager's text


from .json_forms import (  # noqa: E402  (the --json forms, with the words they go with)
    check_json,
    error_json,
    job_types_json,
    outcome_json,
    result_json,
)

__all__ = ["check_json", "error_json", "job_types_json", "outcome_json", "result_json"]
