"""One submission: collect -> hash -> ask -> upload -> checkout, the ONE path every caller
takes (command line, Blender's operators, headless scripts, dry runs, tests).

``Submission.run`` is synchronous and meant for a worker thread; it reports through a
queue of ``ProgressEvent`` snapshots and can be cancelled from any thread. The order of
network calls is chosen for the common cases:

- unchanged resubmission: every checksum comes from the cache, so ONE requirements call
  lists every file, it comes back empty, and the checkout is created;
- cold or partly changed: collecting runs on a thread of its own and feeds each file in
  as soon as it is placed; cached checksums and new ones are asked about in batches as
  they come in (``asking``), so uploads start long before the last file is hashed; then
  the whole list is confirmed (``Asker.ensure_all_stored``) before the checkout;
- dry run: the same gathering, then ONE requirements call, and nothing is sent.

With a render job (``SubmitOptions.job``), the job is checked with the Manager right
after connecting, before collecting starts any upload, and submitted after the checkout
(``job_stage``); a dry run only checks it.

Stages report to the main thread through typed messages (``messages``); see
``gathering`` for the loop, ``uploading`` for what each upload answer means.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from ..collect.collector import placement
from ..collect.plan import PackPlan
from ..errors import Cancelled, ShamanError, error_text
from ..gc_pacing import fewer_collections
from ..jobs.document import checkout_blendfile
from ..jobs.manager import ManagerClient
from ..progress import Phase, ProgressEvent, ProgressTracker
from ..shaman.client import FileSpec
from . import checkout_name
from .asking import Asker
from .checkout import CANCELLED_MESSAGE, CancelState, create_checkout
from .checksums import ChecksumCache
from .collecting import CollectStage
from .contents import Contents, UploadLedger
from .gathering import Gathering
from .hashing import HashStage, hash_workers
from .job_stage import JobStage
from .messages import Inbox
from .options import SubmitOptions
from .result import SubmitResult, build_result, record_history
from .uploading import Uploads

log = logging.getLogger(__name__)

CACHE_FILE_NAME = "checksums.sqlite"
JOIN_S = 30.0
"""How long shutting down waits for upload threads that are still in a call."""


class Submission:
    """Send one .blend and everything it depends on; see the module docstring."""

    def __init__(self, blend: Path, options: SubmitOptions, *,
                 events: queue.SimpleQueue[ProgressEvent] | None = None,
                 cancel: threading.Event | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.blend = Path(blend)
        self.options = options
        self.events = events
        self.cancel_event = cancel if cancel is not None else threading.Event()
        self._state = CancelState(self.cancel_event)
        self._clock = clock
        self._tracker = ProgressTracker(events, clock=clock)
        self._inbox: Inbox = queue.SimpleQueue()
        self._contents = Contents()
        self._ledger = UploadLedger()
        self._cache = ChecksumCache(None)
        self._client: ManagerClient | None = None
        self._uploads: Uploads | None = None
        self._hashing = HashStage(self._inbox, self._tracker,
                                  workers=hash_workers(options.jobs))
        self._collector: CollectStage | None = None
        self._gathering: Gathering | None = None
        self._asker: Asker | None = None
        self._job: JobStage | None = None
        self._started = datetime.now()
        self._blend_name = options.as_name or self.blend.name

    # -- public -------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop as soon as possible, from any thread: in-flight connections are shut.

        Once the checkout request is on its way it is left to finish, since a cut-off
        answer would leave a checkout nobody knows about.
        """
        with self._state.lock:
            self.cancel_event.set()
            client, uploads = self._client, self._uploads
            create_sent = self._state.create_sent
        self._hashing.stop()
        if self._collector is not None:
            self._collector.stop()
        if uploads is not None:
            uploads.stop()
        if client is not None and not create_sent:
            client.abort()

    def run(self) -> SubmitResult:
        """Do the whole submission; always ends with a final event and no temp files."""
        with fewer_collections():  # half a million records at 100,000 files
            return self._run()

    def _run(self) -> SubmitResult:
        result: SubmitResult | None = None
        error: BaseException | None = None
        try:
            self._tracker.set_phase(Phase.COLLECTING, current_file=self.blend.name)
            self._started = datetime.now()  # the checkout path's {date} and {time}
            self._state.raise_if_cancelled()
            self._connect()  # a bad URL is reported before the slow part
            result = self._steps()
            self._tracker.finish(Phase.DONE, _summary(result))
            result.phase_seconds = self._tracker.phase_seconds()
            return result
        except BaseException as exc:
            error = self._as_cancel(exc)
            self._report_failure(error)
            if error is exc:
                raise
            raise error from exc
        finally:
            made = self._shutdown()
            record_history(self.options, self.blend, plan=made, result=result, error=error,
                           cache_hits=self._cache_hits(),
                           phase_seconds=self._tracker.phase_seconds())

    # -- the steps ------------------------------------------------------------------------

    def _connect(self) -> None:
        opts = self.options
        settings = opts.client_settings
        # One pooled connection per upload thread, plus the main thread's calls.
        settings = replace(settings, pool_size=max(settings.pool_size, opts.jobs + 2))
        client = ManagerClient(opts.server_url, settings)
        with self._state.lock:
            self._client = client
            cancelled = self.cancel_event.is_set()
        if cancelled:
            client.abort()
            self._state.raise_if_cancelled()
        if opts.cache_dir is not None:
            self._cache = ChecksumCache(Path(opts.cache_dir) / CACHE_FILE_NAME)
        self._asker = Asker(client, self._contents, self._ledger, self._get_uploads,
                            self._tracker, opts, clock=self._clock,
                            raise_if_cancelled=self._state.raise_if_cancelled)

    def _steps(self) -> SubmitResult:
        """Check the job, gather, upload, check out, submit the job."""
        shared = self._check_job()
        if shared is not None:
            return self._shared_storage_job(shared)
        plan = self._gather()
        if self.options.dry_run:
            return self._dry_run(plan)
        result = self._submit(plan)
        if self._job is not None:
            assert result.checkout_path is not None
            result.job = self._job.submit(
                blendfile=checkout_blendfile(result.checkout_path, plan.blend_checkout_path),
                checkout_path=result.checkout_path)
        return result

    def _check_job(self) -> str | None:
        """Before anything is uploaded: the render job, checked as it will be submitted
        (for the checkout path the template gives now, as the checkout will ask). Returns
        the .blend's path when it renders from the Manager's shared storage (no Shaman),
        else None."""
        request = self.options.job
        if request is None:
            return None
        assert self._client is not None
        self._job = JobStage(self._client, request, tracker=self._tracker,
                             cache_dir=self.options.cache_dir, cancel=self.cancel_event)
        shared = self._job.shared_storage_blend(self.blend)
        if shared is not None:
            self._job.check(blendfile=shared, checkout_path=None)
            return shared
        base = checkout_name.render_checkout_name(
            self.options.checkout_template, blend_name=self._blend_name, now=self._started)
        _virtual, _root, blend_cp = placement(self.blend, project_root=self.options.project_root,
                                              as_name=self.options.as_name)
        self._job.check(blendfile=checkout_blendfile(base, blend_cp), checkout_path=base)
        return None

    def _shared_storage_job(self, blendfile: str) -> SubmitResult:
        """The Manager has no Shaman and the .blend is in its shared storage: nothing to
        collect or upload; the job renders the file where it is."""
        assert self._job is not None
        job = None if self.options.dry_run else self._job.submit(blendfile=blendfile,
                                                                 checkout_path=None)
        return SubmitResult(
            checkout_path=None, blend_checkout_path="", worker_blend_path=blendfile,
            files_total=0, bytes_total=0, files_uploaded=0, bytes_uploaded=0,
            files_already_stored=0, bytes_already_stored=0, missing=[], warnings=[],
            phase_seconds={}, dry_run=self.options.dry_run, job=job, shared_storage=True)

    def _get_uploads(self) -> Uploads:
        with self._state.lock:
            self._state.raise_if_cancelled()
            if self._uploads is None:
                assert self._client is not None
                self._uploads = Uploads(self._client, self._contents, self._ledger,
                                        self._tracker, self._cache, self.options,
                                        self.cancel_event)
            return self._uploads

    def _raise_if_upload_failed(self) -> None:
        if self._uploads is not None:
            self._uploads.raise_if_failed()

    def _gather(self) -> PackPlan:
        assert self._asker is not None
        collector = CollectStage(self.blend, self.options, self._inbox, self._tracker,
                                 self._cache)
        with self._state.lock:
            self._collector = collector
            if self.cancel_event.is_set():
                collector.stop()
        self._gathering = Gathering(
            self.blend, self.options, contents=self._contents, asker=self._asker,
            tracker=self._tracker, cache=self._cache, collector=collector,
            hashing=self._hashing, inbox=self._inbox,
            raise_if_cancelled=self._state.raise_if_cancelled,
            raise_if_upload_failed=self._raise_if_upload_failed)
        return self._gathering.run()

    def _dry_run(self, plan: PackPlan) -> SubmitResult:
        assert self._asker is not None
        specs = self._contents.specs(plan.files)
        self._tracker.set_phase(Phase.CHECKING)
        answer = self._asker.ask(specs)
        self._tracker.answered(None)
        return self._result(plan, specs, None, sent={(r.sha, r.size): r.path for r in answer})

    def _submit(self, plan: PackPlan) -> SubmitResult:
        asker = self._asker
        assert asker is not None and self._client is not None

        def specs() -> list[FileSpec]:  # as they are now (a 417 re-hash changes one)
            return self._contents.specs(plan.files)

        if asker.overlapping:
            asker.flush(force=True)
            self._tracker.set_phase(Phase.UPLOADING)
            self._wait_uploads()
            confirmed = self._ledger.all_confirmed(self._contents.held_keys())
            asker.ensure_all_stored(specs, [] if confirmed else None)
        else:
            self._tracker.set_phase(Phase.CHECKING)
            asker.ensure_all_stored(specs, asker.ask(specs()))
        checkout_path = create_checkout(
            self._client, specs, template=self.options.checkout_template,
            blend_name=self._blend_name, now=self._started, tracker=self._tracker,
            cancel=self._state, resend_missing=lambda: asker.ensure_all_stored(specs, None),
            max_attempts=self.options.tuning.max_name_attempts)
        return self._result(plan, specs(), checkout_path, sent=self._ledger.sent())

    def _wait_uploads(self) -> None:
        if self._uploads is not None:
            self._uploads.wait()
        self._state.raise_if_cancelled()

    def _result(self, plan: PackPlan, specs: list[FileSpec], checkout_path: str | None, *,
                sent: dict[tuple[str, int], str]) -> SubmitResult:
        warnings = list(plan.warnings)
        if self._cache.status in ("locked", "unusable"):
            warnings.append(
                f"The checksum cache {self._cache.path} could not be used ({self._cache.status});"
                " every file was hashed.")
        return build_result(plan, specs, sent=sent, checkout_path=checkout_path,
                            warnings=warnings, dry_run=self.options.dry_run,
                            phase_seconds=self._tracker.phase_seconds())

    # -- ending -------------------------------------------------------------------------

    def _as_cancel(self, exc: BaseException) -> BaseException:
        """A failure caused by cancelling (a connection we cut, say) is a cancel."""
        if (self.cancel_event.is_set() and not isinstance(exc, Cancelled)
                and isinstance(exc, ShamanError) and not self._state.create_sent):
            return Cancelled(CANCELLED_MESSAGE)
        return exc

    def _report_failure(self, error: BaseException) -> None:
        phase = Phase.CANCELLED if isinstance(error, Cancelled) else Phase.FAILED
        self._tracker.finish(phase, error_text(error))

    def _cache_hits(self) -> int:
        return self._gathering.cache_hits if self._gathering is not None else 0

    def _shutdown(self) -> PackPlan | None:
        """Stop every thread, close the cache and the client, remove temporary copies;
        returns the plan (for the history), if there was one."""
        with self._state.lock:
            uploads, self._uploads = self._uploads, None
            client = self._client
        if uploads is not None:
            uploads.stop()
            uploads.join(timeout=JOIN_S)
        self._cache.close()
        if client is not None:
            client.close()
        plan = self._gathering.plan if self._gathering is not None else None
        leftover = self._collector.take_plan() if self._collector is not None else None
        for owned in (plan, leftover):
            if owned is not None:
                owned.cleanup()
        return plan or leftover


def _summary(result: SubmitResult) -> str:
    """The final progress line."""
    if result.dry_run:
        return f"Dry run: {result.files_uploaded:,} files to upload"
    job = f"; render job {result.job.id}" if result.job is not None else ""
    if result.shared_storage:
        return f"Done: no upload needed{job}"
    return f"Done: checkout {result.checkout_path}{job}"
