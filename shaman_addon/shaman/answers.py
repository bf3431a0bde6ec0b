"""What a server answered, checked before it is used: answers over their size cap, and
requirements about files nobody asked about (a server's text is data, never trusted).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from ..errors import AttemptFailed, AttemptPhase, NotAShamanServer, UnsafeServerAnswer
from ..untrusted import quoted
from .failures import status_failure
from .messages import Answer
from .protocol import FileRequirement, FileSpec, UploadResult, is_safe_checkout_path

log = logging.getLogger(__name__)

SMALL_ANSWER = 1 << 20
"""The most read of an answer that is a few bytes of JSON (configuration, file status,
checkout, an upload's answer); an error page fits too."""


def requirements_cap(files: Sequence[FileSpec]) -> int:
    """The most a requirements answer about ``files`` can hold: each entry at most once,
    its path as asked (JSON may escape each character in 6 bytes), plus room for an
    error page. 100,000 files of 80-character paths: about 70 MB, never gigabytes."""
    return SMALL_ANSWER + sum(256 + 6 * len(spec.path) for spec in files)


MAX_CHECKOUT_PATH = 4096
"""The longest checkout path accepted back from the server (it names a folder)."""


def check_checkout_path(url: str, asked: str, answered: str) -> None:
    """The checkout path the server says it made must be a safe relative path (the one
    rule, ``is_safe_checkout_path``): it is printed, stored and handed to the job."""
    if len(answered) > MAX_CHECKOUT_PATH or not is_safe_checkout_path(answered):
        raise AttemptFailed(UnsafeServerAnswer(
            f"{url} answered that it made checkout {quoted(answered)} (asked for "
            f"{quoted(asked)}), which is not a safe relative path; it was not used. Look "
            "in the Manager's jobs folder and its log.", url=url, status=200),
            AttemptPhase.FINAL)
    if answered != asked:
        log.info("server made checkout %s (asked for %s)", quoted(answered), quoted(asked))


def too_large(what: str, url: str, answer: Answer) -> Answer:
    """``answer`` if it came whole; NotAShamanServer if it was over its size cap."""
    if answer.truncated:
        raise AttemptFailed(NotAShamanServer(
            f"{what}: {url} answered with more than {len(answer.body):,} bytes, far more "
            "than a Flamenco Manager sends for this; the answer was not read further.",
            url=url, status=answer.status), AttemptPhase.FINAL)
    return answer


def only_asked(url: str, files: Sequence[FileSpec],
                answer: list[FileRequirement]) -> list[FileRequirement]:
    """The requirements about content that was asked about, each with a path that was
    asked (a server's own path could hold anything); others are ignored, with a warning
    quoting the first. More entries than files asked is no Shaman answer at all."""
    if len(answer) > len(files):
        raise NotAShamanServer(
            f"{url} answered with {len(answer):,} requirements about {len(files):,} files "
            "asked; that is not a Shaman requirements list.", url=url, status=200)
    if not answer:
        return []  # an unchanged shot: nothing needed, nothing to match
    paths: dict[tuple[str, int], set[str]] = {(r.sha, r.size): set() for r in answer}
    for spec in files:
        asked = paths.get((spec.sha, spec.size))
        if asked is not None:
            asked.add(spec.path)
    kept: list[FileRequirement] = []
    ignored: list[FileRequirement] = []
    for req in answer:
        asked = paths.get((req.sha, req.size))
        if not asked:
            ignored.append(req)
        elif req.path in asked:
            kept.append(req)
        else:
            kept.append(dataclasses.replace(req, path=min(asked)))
    if ignored:
        log.warning("%s named %d file(s) that were not asked about, ignored: %s (%s/%d)",
                    url, len(ignored), quoted(ignored[0].path), quoted(ignored[0].sha, 80),
                    ignored[0].size)
    return kept


def upload_result(what: str, url: str, answer: Answer) -> UploadResult:
    if answer.status in (200, 204):
        return UploadResult.STORED
    if answer.status == 208:
        return UploadResult.ALREADY_KNOWN
    if answer.status == 425:
        return UploadResult.DEFERRED
    raise status_failure(what, url, answer)


def strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"not a boolean: {value!r}")
    return value
