"""The render job of one submission: checked before a byte is uploaded, submitted after
the checkout.

Before collecting starts, the job is sent to ``/jobs/check`` exactly as it will be
submitted: its ``blendfile`` is built from the checkout path that will be asked for and
the blend's place in the checkout as collecting will put it (``collect.placement``).
The worker tag's id is looked up then too. A 400 stops the submission in the Manager's
own words; a 412 (the job type changed on the Manager) reads the job type again once,
updates the cache, and checks again. After the checkout the job goes to ``/jobs`` with
the path the server returned; a failure then is ``JobNotSubmitted``, naming the
checkout: submitting again uploads nothing, since the server has every file.

Shared storage instead of Shaman: when the Manager runs without Shaman and the .blend
sits inside its shared storage, the job renders the file where it is, and nothing is
collected or uploaded.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from pathlib import Path

from ..errors import (
    Cancelled,
    JobNotSubmitted,
    JobRefused,
    JobTypeStale,
    ShamanError,
    SharedStorageUnavailable,
    WorkerTagUnknown,
)
from ..jobs.catalog import refresh_job_type
from ..jobs.document import job_document
from ..jobs.manager import ManagerClient
from ..jobs.request import JobRequest, SubmittedJob
from ..progress import Phase, ProgressTracker

log = logging.getLogger(__name__)

CHECKING = "checking the render job"
SUBMITTING = "submitting the render job"


class JobStage:
    """One render job: ``check`` before any upload, ``submit`` after the checkout."""

    def __init__(self, client: ManagerClient, request: JobRequest, *,
                 tracker: ProgressTracker, cache_dir: Path | None,
                 cancel: threading.Event | None = None) -> None:
        self._client = client
        self._cancel = cancel if cancel is not None else threading.Event()
        self.request = request
        self._tracker = tracker
        self._cache_dir = cache_dir
        self._tag_id: str | None = None

    def shared_storage_blend(self, blend: Path) -> str | None:
        """The .blend's path for the job when the Manager runs without Shaman (it must
        sit inside the shared storage: else SharedStorageUnavailable); None when the
        Manager has Shaman (the ordinary way)."""
        storage = self._client.shared_storage(self.request.submitter_platform)
        if storage.shaman_enabled:
            return None
        where = Path(os.path.realpath(blend))
        root = Path(os.path.realpath(storage.location)) if storage.location else None
        if root is None or not where.is_relative_to(root):
            raise SharedStorageUnavailable(
                f"The Flamenco Manager at {self._client.base_url} runs without Shaman, so "
                f"the farm only reads files from its shared storage "
                f"({storage.location or 'not set'}), and {blend} is not in there. Save the "
                "production inside the shared storage, or enable Shaman on the Manager.")
        return str(where)

    def check(self, *, blendfile: str, checkout_path: str | None) -> None:
        """``/jobs/check`` for the job as it will be submitted; the worker tag's id looked
        up first. JobRefused, JobTypeStale (412 twice), WorkerTagUnknown."""
        self._tracker.set_phase(Phase.RENDER_JOB, CHECKING)
        self._tag_id = self._find_tag()
        try:
            self._client.check_job(self._document(blendfile, checkout_path))
        except JobRefused as exc:
            raise exc.reworded(f"{exc}. Nothing was uploaded.") from exc
        except JobTypeStale as stale:
            log.info("job type %s is stale; reading it again", self.request.job_type.name)
            job_type = refresh_job_type(self._client, self.request.job_type.name,
                                        self._cache_dir)
            self.request = replace(self.request, job_type=job_type)
            try:
                self._client.check_job(self._document(blendfile, checkout_path))
            except JobTypeStale as again:
                raise again.reworded(
                    f"{again}, and again after reading job type {job_type.name!r} anew (it "
                    "keeps changing on the Manager). Nothing was uploaded; submit again "
                    "once it stays the same.") from stale
            except JobRefused as exc:
                raise exc.reworded(f"{exc}. Nothing was uploaded.") from exc

    def submit(self, *, blendfile: str, checkout_path: str | None) -> SubmittedJob:
        """``/jobs``; after a checkout a failure is JobNotSubmitted naming it.

        A cancel that came while the checkout was being made (which is left to finish)
        stops here: the person asked for no job, and the checkout is named so that
        submitting again costs no upload."""
        self._tracker.set_phase(Phase.RENDER_JOB, SUBMITTING)
        if self._cancel.is_set():
            where = f"in checkout {checkout_path!r}" if checkout_path else "in place"
            raise Cancelled(
                f"The submission was cancelled before the render job was submitted; the "
                f"files are on the server {where}, and submitting again sends no file "
                "bytes.")
        doc = self._document(blendfile, checkout_path)
        try:
            return self._client.submit_job(doc, worker_tag_name=self.request.worker_tag,
                                           checkout_path=checkout_path)
        except ShamanError as exc:
            if checkout_path is None:
                raise
            raise JobNotSubmitted(
                f"The files are on the server in checkout {checkout_path!r}, but the render "
                f"job {self.request.name!r} was not submitted: {exc}. Submitting the same "
                "file again sends no file bytes (the server has them all) and submits the "
                "job.", checkout_path=checkout_path) from exc

    def _document(self, blendfile: str, checkout_path: str | None) -> dict[str, object]:
        return job_document(self.request, blendfile=blendfile, checkout_path=checkout_path,
                            worker_tag_id=self._tag_id)

    def _find_tag(self) -> str | None:
        name = self.request.worker_tag
        if not name:
            return None
        tags = self._client.worker_tags()
        for tag in tags:
            if tag.name == name:
                return tag.id
        known = ", ".join(repr(t.name) for t in tags) or "none"
        raise WorkerTagUnknown(
            f"The Manager at {self._client.base_url} has no worker tag {name!r} (its tags: "
            f"{known}); choose one of those, or none for any worker. Nothing was uploaded.")

