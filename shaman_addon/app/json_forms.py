"""The ``--json`` forms: results, errors, server checks and job types as JSON documents.

What a script reads (the sentences a person reads are in ``present``, which re-exports
these): every list whole, however long; the words cut long lists short, the JSON never.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import JobNotSubmitted, MissingDependencies, ShamanError, error_text
from .exit_codes import exit_code_for
from .present import NO_RESULT

if TYPE_CHECKING:
    from ..jobs.catalog import ManagerInfo
    from ..jobs.types import JobSetting
    from ..shaman.client import ServerCheck
    from ..submit import SubmitResult
    from .runner import Outcome


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """``--json``: the result's own JSON, or the error with its type and exit code."""
    if outcome.result is not None and outcome.error is None:
        return result_json(outcome.result)
    return error_json(outcome.error or ShamanError(NO_RESULT))


def result_json(result: SubmitResult) -> dict[str, Any]:
    """A result's JSON; a dry run sent nothing, so it says what it would upload under
    ``files_to_upload``/``bytes_to_upload`` and 0 under ``*_uploaded``."""
    doc = result.to_json()
    if result.dry_run:
        doc["files_to_upload"] = doc["files_uploaded"]
        doc["bytes_to_upload"] = doc["bytes_uploaded"]
        doc["files_uploaded"] = doc["bytes_uploaded"] = 0
    doc["files_same_content"] = max(
        0, result.files_total - result.files_uploaded - result.files_already_stored)
    return doc


def error_json(error: BaseException) -> dict[str, Any]:
    """An error's JSON: its sentence, type and exit code (and what it carries)."""
    doc: dict[str, Any] = {
        "error": error_text(error),
        "error_type": type(error).__name__,
        "exit_code": exit_code_for(error),
    }
    if isinstance(error, JobNotSubmitted):
        doc["checkout_path"] = error.checkout_path
    if isinstance(error, MissingDependencies):
        doc["missing"] = [{"path": path, "referenced_by": list(users)}
                          for path, users in error.missing]
    return doc


def check_json(server: str, answer: ServerCheck) -> dict[str, Any]:
    return {
        "server": server,
        "ok": answer.ok,
        "reachable": answer.reachable,
        "is_manager": answer.is_manager,
        "shaman_enabled": answer.shaman_enabled,
        "message": answer.message,
    }


def _setting_json(setting: JobSetting) -> dict[str, Any]:
    from ..jobs.values import expected
    from .jobs import how_submit_fills

    how, reads = how_submit_fills(setting)
    return {
        "key": setting.key, "type": setting.type.value, "subtype": setting.subtype.value,
        "expected": expected(setting), "default": setting.default,
        "choices": list(setting.choices), "min": setting.minimum, "max": setting.maximum,
        "required": setting.required, "editable": setting.editable,
        "visible": setting.visible.value, "shown_to_artist": setting.visible.shown_to_artist,
        "label": setting.title, "description": setting.description, "eval": setting.eval,
        "eval_description": setting.eval_description,
        "show_link_button": setting.show_link_button,
        "command_line": how, "blender_only_reads": reads,
    }


def job_types_json(info: ManagerInfo) -> dict[str, Any]:
    """``job-types --json``: every job type, each setting with how ``submit`` fills it
    in without Blender, and the worker tags."""
    return {
        "server": info.url, "version": info.version, "fetched_at": info.fetched_at,
        "job_types": [
            {"name": t.name, "label": t.label, "description": t.description, "etag": t.etag,
             "settings": [_setting_json(s) for s in t.settings]}
            for t in info.job_types],
        "worker_tags": [{"id": t.id, "name": t.name, "description": t.description}
                        for t in info.worker_tags],
    }
