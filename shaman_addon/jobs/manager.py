"""The Manager's job API over HTTP: version, shared storage, job types, worker tags,
checking a job and submitting it.

``ManagerClient`` is a ``ShamanClient`` with the job endpoints added: one ``requests``
session, one retry table (``shaman.retry``), one way of wording failures
(``shaman.failures``), and ``abort()`` cuts job calls as it cuts uploads. Every job call
is bounded: an overall deadline and a cap on the answer's size (a job type with every
setting is ~10 kB on a real Manager; ``MAX_ANSWER_BYTES`` is far above that).

Where a real Manager 3.9 differs from its API description, this follows the real one:
``/jobs/check`` answers 204, an unknown worker tag id is a 500 "error persisting job in
database", and a submitted job comes back with ``submitter_platform`` empty.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import (
    AttemptFailed,
    AttemptPhase,
    JobRefused,
    JobTypeStale,
    JobTypeUnknown,
    ManagerTooOld,
    NotAShamanServer,
    ShamanError,
    WorkerTagUnknown,
)
from ..shaman.client import ShamanClient
from ..shaman.failures import json_object, preview, status_failure
from ..shaman.messages import Answer
from ..shaman.protocol import API
from ..shaman.retry import RetryRule, retry_create, retry_read
from ..shaman.server_errors import ErrorBody, read_error_body
from .catalog import WorkerTag, parse_worker_tags
from .request import SubmittedJob
from .types import JobType, parse_job_type, parse_job_types

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 4 << 20
"""The largest answer a job call reads; no real Manager's answer comes near."""
MIN_MAJOR_VERSION = 3
PLATFORMS = ("linux", "windows", "darwin")
_VERSION_RE = re.compile(r"(\d+)\.(\d+)")

Refusal = Callable[[Answer, ErrorBody], ShamanError | None]


@dataclass(frozen=True)
class ManagerVersion:
    name: str
    version: str
    """The short version, as the Manager says it (``3.9-beta1``)."""


@dataclass(frozen=True)
class SharedStorage:
    """Where the Manager's shared storage is, as people on one platform see it."""

    location: str
    shaman_enabled: bool


class ManagerClient(ShamanClient):
    """One Manager: its Shaman API (inherited) and its job API."""

    def __enter__(self) -> ManagerClient:
        return self

    @property
    def _deadline_s(self) -> float:
        return self.settings.connect_timeout + self.settings.read_timeout

    def job_page(self, job_id: str) -> str:
        """The job's page in the Manager's web app."""
        return f"{self.base_url}/app/jobs/{quote(job_id, safe='')}"

    # -- reading --------------------------------------------------------------------------

    def version(self) -> ManagerVersion:
        """The Manager's version; ManagerTooOld below 3.x (no job API to submit to)."""
        url = f"{self.base_url}{API}/version"
        what = "Reading the Manager's version"
        data = self._job_json(what, "GET", url, refuse=self._too_old(url))
        short = data.get("shortversion") or data.get("version")
        if not isinstance(short, str) or not short:
            raise NotAShamanServer(
                f"{what}: {url} answered without a version ({preview(data)}); is this a "
                "Flamenco Manager?", url=url, status=200)
        found = _VERSION_RE.match(short)
        if found is None or int(found.group(1)) < MIN_MAJOR_VERSION:
            raise ManagerTooOld(
                f"The Flamenco Manager at {self.base_url} is version {short}; submitting "
                f"render jobs needs Flamenco {MIN_MAJOR_VERSION}.0 or newer. Upgrade the "
                "Manager, or submit a checkout only (no render job).", url=url)
        return ManagerVersion(name=str(data.get("name", "")), version=short)

    def shared_storage(self, platform: str) -> SharedStorage:
        """``GET /configuration/shared-storage/users/<platform>``; from a Manager older
        than that endpoint (404), the configuration's storage location."""
        if platform not in PLATFORMS:
            raise ValueError(f"platform {platform!r} is not one of {PLATFORMS}")
        url = f"{self.base_url}{API}/configuration/shared-storage/users/{platform}"
        what = "Reading where the Manager's shared storage is"
        answer = self._job_call(what, "GET", url, None, retry_read, ok=(200, 404))
        if answer.status == 404:
            configuration = self.configuration()
            return SharedStorage(location=configuration.storage_location,
                                 shaman_enabled=configuration.shaman_enabled)
        data = _json(what, url, answer)
        location, enabled = data.get("location"), data.get("shamanEnabled")
        if not isinstance(location, str) or not isinstance(enabled, bool):
            raise NotAShamanServer(
                f"{what}: {url} answered without a location and shamanEnabled "
                f"({preview(data)})", url=url, status=200)
        return SharedStorage(location=location, shaman_enabled=enabled)

    def job_types(self) -> tuple[JobType, ...]:
        url = f"{self.base_url}{API}/jobs/types"
        data = self._job_json("Reading the Manager's job types", "GET", url,
                              refuse=self._too_old(url))
        return parse_job_types(data, url=url)

    def job_type(self, name: str) -> JobType:
        """One job type, read again (its etag may have changed); JobTypeUnknown on 404."""
        url = f"{self.base_url}{API}/jobs/type/{quote(name, safe='')}"

        def unknown(answer: Answer, body: ErrorBody) -> ShamanError | None:
            if answer.status != 404:
                return None
            return JobTypeUnknown(
                f"The Manager at {self.base_url} has no job type {name!r} (any more): "
                f"{url} answered 404{_quoted(body)}; refresh the job types and choose "
                "another.")

        data = self._job_json(f"Reading job type {name!r}", "GET", url, refuse=unknown)
        return parse_job_type(data, url=url)

    def worker_tags(self) -> tuple[WorkerTag, ...]:
        """The Manager's worker tags; none from a Manager without them (404)."""
        url = f"{self.base_url}{API}/worker-mgt/tags"
        answer = self._job_call("Reading the Manager's worker tags", "GET", url, None,
                                retry_read, ok=(200, 404))
        if answer.status == 404:
            return ()
        data = _json("Reading the Manager's worker tags", url, answer)
        return parse_worker_tags(data, url=url)

    # -- the job ----------------------------------------------------------------------------

    def check_job(self, doc: Mapping[str, Any]) -> None:
        """``POST /jobs/check``: returns when the Manager would accept ``doc``.
        JobRefused (400, in its own words), JobTypeStale (412)."""
        url = f"{self.base_url}{API}/jobs/check"
        what = f"Checking render job {doc.get('name')!r} ({doc.get('type')}) with {url}"
        self._job_call(what, "POST", url, dict(doc), retry_read, ok=(200, 204),
                       refuse=self._refused(what, url, doc))

    def submit_job(self, doc: Mapping[str, Any], *, worker_tag_name: str = "",
                   checkout_path: str | None = None) -> SubmittedJob:
        """``POST /jobs``: the job as the Manager accepted it. Never sent twice once
        anything went out (a repeat could make a second job)."""
        url = f"{self.base_url}{API}/jobs"
        what = f"Submitting render job {doc.get('name')!r} ({doc.get('type')}) to {url}"
        refused = self._refused(what, url, doc)

        def refuse(answer: Answer, body: ErrorBody) -> ShamanError | None:
            if (answer.status == 500 and doc.get("worker_tag")
                    and "persisting job" in body.message):
                tag = worker_tag_name or str(doc["worker_tag"])
                return WorkerTagUnknown(
                    f"{what}: {url} answered 500{_quoted(body)}: the worker tag {tag!r} "
                    f"(id {doc['worker_tag']}) is probably gone from the Manager; refresh "
                    "the worker tags and choose another, or none.")
            return refused(answer, body)

        answer = self._job_call(what, "POST", url, dict(doc), retry_create, refuse=refuse)
        data = _json(what, url, answer)
        job_id = data.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise NotAShamanServer(
                f"{what}: {url} answered 200 without the job's id ({preview(data)})",
                url=url, status=200)
        return SubmittedJob(id=job_id, name=str(data.get("name", doc.get("name", ""))),
                            status=str(data.get("status", "")),
                            type=str(data.get("type", doc.get("type", ""))),
                            url=self.job_page(job_id), checkout_path=checkout_path)

    # -- machinery ----------------------------------------------------------------------

    def _too_old(self, url: str) -> Refusal:
        def refuse(answer: Answer, body: ErrorBody) -> ShamanError | None:
            if answer.status != 404 or not body.is_json:
                return None
            return ManagerTooOld(
                f"The Flamenco Manager at {self.base_url} has no job API ({url} answered "
                f"404{_quoted(body)}); submitting render jobs needs Flamenco "
                f"{MIN_MAJOR_VERSION}.0 or newer. Upgrade the Manager, or submit a checkout "
                "only (no render job).", url=url)
        return refuse

    def _refused(self, what: str, url: str, doc: Mapping[str, Any]) -> Refusal:
        too_old = self._too_old(url)

        def refuse(answer: Answer, body: ErrorBody) -> ShamanError | None:
            kw: dict[str, Any] = {"url": url, "status": answer.status,
                                  "server_message": body.message}
            if answer.status == 400:
                return JobRefused(
                    f"{what}: the Manager refused the job{_quoted(body, ':')}", **kw)
            if answer.status == 412:
                return JobTypeStale(
                    f"{what}: the Manager has changed job type {doc.get('type')!r} since it "
                    f"was read (etag {doc.get('type_etag')!r}){_quoted(body, ':')}", **kw)
            return too_old(answer, body)
        return refuse

    def _job_call(self, what: str, method: str, url: str, payload: Any, rule: RetryRule, *,
                  ok: tuple[int, ...] = (200,), refuse: Refusal | None = None) -> Answer:
        def attempt() -> Answer:
            answer = self._exchange(what, method, url, payload, max_bytes=MAX_ANSWER_BYTES,
                                    deadline_s=self._deadline_s)
            if answer.truncated:
                raise AttemptFailed(NotAShamanServer(
                    f"{what}: {url} answered with more than {MAX_ANSWER_BYTES:,} bytes; no "
                    "Flamenco Manager's answer is that large", url=url,
                    status=answer.status), AttemptPhase.FINAL)
            if answer.status in ok:
                return answer
            if refuse is not None:
                body = read_error_body(answer.body, answer.header("Content-Type"))
                error = refuse(answer, body)
                if error is not None:
                    raise AttemptFailed(error, AttemptPhase.STATUS, answer.status)
            raise status_failure(what, url, answer)

        return self._retrier.run(what, attempt, rule)

    def _job_json(self, what: str, method: str, url: str, *,
                  refuse: Refusal | None = None) -> dict[str, Any]:
        answer = self._job_call(what, method, url, None, retry_read, refuse=refuse)
        return _json(what, url, answer)


def _json(what: str, url: str, answer: Answer) -> dict[str, Any]:
    """The answer's JSON object, or the error a person reads (outside the retry loop)."""
    try:
        return json_object(what, url, answer)
    except AttemptFailed as failed:
        raise failed.error from failed.cause


def _quoted(body: ErrorBody, lead: str = "") -> str:
    """The Manager's own words for the end of a sentence."""
    if body.message:
        return f"{lead} \"{body.message}\""
    return f"{lead} ({body.describe()})" if lead else f" ({body.describe()})"
