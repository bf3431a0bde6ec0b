"""One submission: plan -> checksums -> requirements -> uploads -> checkout.

``Submission.run`` is synchronous and meant for a worker thread; it reports through a
queue of ``ProgressEvent`` snapshots and can be cancelled from any thread. The order of
network calls is chosen for the common cases:

- unchanged resubmission: every checksum comes from the cache, so ONE requirements call
  lists every file, it comes back empty, and the checkout is created;
- cold or partly changed: cached checksums are asked about first, the rest are hashed on
  a few threads and asked about in batches as they come in, so uploads start long before
  the last file is hashed; then a requirements call over the WHOLE list confirms,
  repeated (bounded) until it comes back empty, and only then is the checkout created.
  When every file was in a batch and every content asked for was stored by our own
  uploads, that confirming call is skipped: the checkout request checks the store
  itself, and a file it reports missing is sent again.

Without a ready plan, collecting runs on a thread of its own and feeds files in as it
places them, so all of the above starts while the libraries are still being read.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from .. import __version__
from ..collect.plan import MissingFile, PackPlan, PlanFile
from ..errors import (
    Cancelled,
    CheckoutExists,
    ChecksumMismatch,
    LocalFileChanged,
    MissingDependencies,
    MissingFilesAtCheckout,
    RequestNotRead,
    ShamanError,
    TransportFailure,
    UploadReset,
)
from ..progress import Phase, ProgressEvent, ProgressTracker
from ..shaman.client import (
    Answer,
    ClientSettings,
    FileSpec,
    PipelinedConnection,
    ShamanClient,
    UploadResult,
    redact_url,
)
from . import checkout_name, checksums
from .checkout_name import DEFAULT_TEMPLATE
from .checksums import ChecksumCache, FileStat
from .history import append_history
from .upload_pool import UploadPool

log = logging.getLogger(__name__)

CACHE_FILE_NAME = "checksums.sqlite"
MAX_NAME_ATTEMPTS = 10
BATCH_FILES = 500
BATCH_BYTES = 64 << 20
BATCH_SECONDS = 0.5
LOW_WATER_PER_JOB = 2
"""Ask about the checksums gathered so far as soon as the upload threads have fewer
than this many files each left: waiting for a full batch left them idle (measured: no
upload between the first batch at 0.09 s and the second at 0.47 s of a cold run)."""
LOW_WATER_MIN_FILES = 32
LOW_WATER_MIN_SECONDS = 0.05
"""A batch asked about early holds at least this many files or waited this long."""
STREAM_BATCH = 64
"""Files the collector hands over at a time while it still reads libraries."""
HASHED_BATCH = 64  # most checksums handed from a hashing thread to the main one at once


@dataclass(frozen=True)
class Tuning:
    """The pipeline's bounds and thresholds; tests set them to reach a case quickly."""

    hash_first_bytes: int = 64 << 20
    """When no more than this is left to hash (say, only rewritten .blend copies), hash
    it first and ask about everything in ONE requirements call; overlapping saves
    nothing."""
    defer_delays_s: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
    """Back-off after each 425 of one file within a round; after the last, the file waits
    for the next requirements round (which also tells whether the other upload
    finished)."""
    max_rounds: int = 5
    """Requirements rounds after the first uploads before giving up on files never
    stored."""
    max_wait_rounds: int = 60
    """Rounds in which the only files left are being uploaded by someone else; past half
    of them, this client sends those files itself (the other one may be stuck)."""
    max_resets_per_file: int = 5


@dataclass
class SubmitOptions:
    """Everything a submission needs besides the .blend; the CLI and Blender fill it."""

    server_url: str
    checkout_template: str = DEFAULT_TEMPLATE
    project_root: Path | None = None
    jobs: int = 4
    dry_run: bool = False
    fail_on_missing: bool = False
    cache_dir: Path | None = None
    as_name: str | None = None
    client_settings: ClientSettings = field(default_factory=ClientSettings)
    app_info: dict[str, str] = field(default_factory=dict)
    tuning: Tuning = field(default_factory=Tuning)


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
        }


Key = tuple[str, int]


@dataclass
class _Content:
    """One distinct (sha, size) to upload, and the local files that hold it."""

    sha: str
    size: int
    sources: list[Path]
    name: str
    defers: int = 0
    resets: int = 0
    can_defer: bool = True
    # A fast lane's attempt, for _upload to take as its first: an answer, or the failure.
    first_attempt: Answer | TransportFailure | None = None
    lane_ticket: int = -1  # the fast lane's ticket for reading its answer

    @property
    def key(self) -> Key:
        return (self.sha, self.size)


@dataclass
class _Hashed:
    index: int
    stat: FileStat
    sha: str


@dataclass
class _Stream:
    """The state of a submission that hashes (and sends) files while they are collected."""

    files: list[PlanFile]
    index_of: dict[str, int] = field(default_factory=dict)  # checkout path -> index
    gen: dict[int, int] = field(default_factory=dict)  # bumped when an entry is replaced
    held: list[int] = field(default_factory=list)  # checksums not asked about yet
    batch: list[FileSpec] = field(default_factory=list)
    batch_bytes: int = 0
    known_bytes: int = 0
    hit_bytes: int = 0  # from the cache, not yet told to the progress tracker
    hit_files: int = 0
    miss_bytes: int = 0
    outstanding: int = 0
    collecting: bool = True
    overlap: bool = False
    first: bool = True
    last_flush: float = 0.0


class _PipedLane:
    """One of the upload pool's fast lanes (``upload_pool.FastLane``): first attempts of
    small files, pipelined by one thread; what it does not store goes through ``_upload``."""

    depth = 8

    def __init__(self, conn: PipelinedConnection, client: ShamanClient,
                 on_stored: Callable[[_Content], None]) -> None:
        self._conn = conn
        self._client = client
        self._on_stored = on_stored
        self._broken: TransportFailure | None = None

    def accepts(self, item: _Content) -> bool:
        return item.defers == 0 and item.resets == 0 and self._conn.fits(item.size)

    def start(self, item: _Content) -> None:
        request = self._client.upload_request(item.sha, item.size, item.sources[0],
                                              original_filename=item.name,
                                              can_defer=item.can_defer)
        try:
            item.lane_ticket = self._conn.write(request, item.sources[0], item.size)
        except TransportFailure as failure:  # could not connect, or the write failed
            item.first_attempt = failure  # _upload's first attempt: no extra connect wait
            raise

    def finish(self, item: _Content) -> bool:
        try:
            answer = self._conn.read(item.lane_ticket)
        except RequestNotRead:
            # Written behind an answer that closed the connection: the server never read
            # it, so it goes the ordinary way as a first attempt. Those written after it
            # (on a new connection) are read on as usual.
            item.first_attempt = None
            return False
        except TransportFailure as failure:
            self._broken = failure
            raise
        if answer.status in (200, 204):
            self._on_stored(item)
            return True
        item.first_attempt = answer  # _upload takes it as its first attempt's answer
        return False

    def reset(self) -> None:
        self._conn.reset()

    def broken(self, items: Sequence[_Content]) -> None:
        failure = self._broken
        self._broken = None  # one failure's error is never handed to the next
        for item in items:
            item.first_attempt = failure  # as if _upload's own first attempt had met it


def _check_checkout_path(path: str, source: Path) -> None:
    """The server does not check file paths; a bad one could escape the checkout."""
    pure = PurePosixPath(path)
    bad = (
        not path
        or "\\" in path
        or path.startswith("/")
        or pure.is_absolute()
        or any(part in ("..", ".", "") for part in path.split("/"))
        or (len(path) >= 2 and path[1] == ":")
    )
    if bad:
        raise ShamanError(
            f"The file {source} would land at {path!r} in the checkout, which is not a safe "
            "relative path; this is a bug in collecting the dependencies, nothing was sent."
        )


class Submission:
    """Send one .blend and everything it depends on; see the module docstring."""

    def __init__(
        self,
        blend: Path,
        options: SubmitOptions,
        *,
        events: queue.SimpleQueue[ProgressEvent] | None = None,
        cancel: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        plan: PackPlan | None = None,
    ) -> None:
        """``plan`` skips collecting (a caller that collected already, or tests)."""
        self.blend = Path(blend)
        self.options = options
        self.events = events
        self.cancel_event = cancel if cancel is not None else threading.Event()
        self._clock = clock
        self._given_plan = plan
        self._tracker = ProgressTracker(events, clock=clock)
        self._lock = threading.Lock()
        self._client: ShamanClient | None = None
        self._create_sent = False
        self._cache = ChecksumCache(None)
        self._pool: UploadPool[_Content] | None = None
        # per-run state
        self._specs: dict[int, FileSpec] = {}
        self._by_key: dict[Key, list[int]] = {}
        self._hash_stop = threading.Event()
        self._stats: dict[int, FileStat] = {}
        self._plan: PackPlan | None = None
        self._queued: set[Key] = set()
        self._counted: set[Key] = set()
        self._finished: set[Key] = set()
        self._asked: set[Key] = set()  # contents named in a requirements call this run
        self._uploaded: dict[Key, str] = {}
        self._rehashed: set[Path] = set()
        self._cache_hits = 0
        self._collect_stop = threading.Event()
        self._collected: PackPlan | None = None  # the collector thread's plan, to clean up

    # -- public -------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop as soon as possible, from any thread: in-flight connections are shut.

        Once the checkout request is on its way it is left to finish, since a cut-off
        answer would leave a checkout nobody knows about.
        """
        with self._lock:
            self.cancel_event.set()
            self._hash_stop.set()
            self._collect_stop.set()
            client = self._client
            create_sent = self._create_sent
            pool = self._pool
        if pool is not None:
            pool.stop()
        if client is not None and not create_sent:
            client.abort()

    def run(self) -> SubmitResult:
        """Do the whole submission; always ends with a final event and no temp files."""
        tracker = self._tracker
        plan: PackPlan | None = self._given_plan  # ours to clean up, whatever happens
        error: BaseException | None = None
        result: SubmitResult | None = None
        try:
            tracker.set_phase(Phase.COLLECTING, current_file=self.blend.name)
            self._raise_if_cancelled()
            self._make_client()  # a bad URL is reported before the slow part
            if self._given_plan is None and not self.options.dry_run:
                result = self._submit_streaming()
                plan = self._plan
            else:
                plan = self._given_plan if self._given_plan is not None else self._collect()
                self._plan = plan
                result = self._submit(plan)
            summary = (
                f"Dry run: {result.files_uploaded:,} files to upload"
                if result.dry_run
                else f"Done: checkout {result.checkout_path}"
            )
            tracker.finish(Phase.DONE, summary)
            result.phase_seconds = tracker.phase_seconds()
            return result
        except BaseException as exc:
            error = exc
            if self.cancel_event.is_set() and not isinstance(exc, Cancelled) and (
                isinstance(exc, ShamanError) and not self._create_sent
            ):
                error = Cancelled(
                    "The submission was cancelled; files already uploaded stay on the "
                    "server and will be skipped next time."
                )
                error.__cause__ = exc
            if isinstance(error, Cancelled):
                tracker.finish(Phase.CANCELLED, str(error))
            elif isinstance(error, ShamanError):
                tracker.finish(Phase.FAILED, str(error))
            else:
                tracker.finish(Phase.FAILED, f"Unexpected error ({type(exc).__name__}): {exc}")
            if error is exc:
                raise
            raise error from exc
        finally:
            self._shutdown()
            if plan is not None:
                plan.cleanup()
            if self._collected is not None:
                self._collected.cleanup()
                plan = plan or self._collected
            self._record(plan, result, error)

    # -- steps --------------------------------------------------------------------------
    def _collect(
        self,
        *,
        cancel: threading.Event | None = None,
        on_progress: Callable[[str], None] | None = None,
        on_file: Callable[[PlanFile], None] | None = None,
    ) -> PackPlan:
        """Collect the plan (both ways of submitting call this); by default cancelled
        with the submission and reporting to the progress bar."""
        from ..collect.collector import collect  # imported late: it pulls in BAT

        return collect(
            self.blend,
            project_root=self.options.project_root,
            as_name=self.options.as_name,
            cache_dir=self.options.cache_dir,
            cancel=cancel if cancel is not None else self.cancel_event,
            on_progress=on_progress or (
                lambda text: self._tracker.set_phase(Phase.COLLECTING, text)),
            on_file=on_file,
        )

    def _check_missing(self, plan: PackPlan) -> None:
        if plan.missing and self.options.fail_on_missing:
            listed = "; ".join(m.path for m in plan.missing[:10])
            more = f" and {len(plan.missing) - 10} more" if len(plan.missing) > 10 else ""
            raise MissingDependencies(
                f"{len(plan.missing)} dependencies of {self.blend} are missing ({listed}{more}); "
                "nothing was sent because 'fail on missing' is set."
            )

    def _submit(self, plan: PackPlan) -> SubmitResult:
        opts = self.options
        self._check_missing(plan)
        self._check_plan(plan)
        if opts.cache_dir is not None:
            self._cache = ChecksumCache(Path(opts.cache_dir) / CACHE_FILE_NAME)
        misses = self._hash_from_cache(plan)
        if opts.dry_run:
            self._hash_all(misses, plan)
            self._tracker.set_phase(Phase.CHECKING)
            answer = self._ask_all(plan)
            self._tracker.answered(None)
            return self._result(plan, None, dry_answer=answer)

        first_answer: list[Any] | None = None
        if sum(self._stats[i].size for i in misses) <= self.options.tuning.hash_first_bytes:
            self._hash_all(misses, plan)
            self._tracker.set_phase(Phase.CHECKING)
            first_answer = self._ask_all(plan)
        else:
            self._hash_and_upload(misses, plan)
        self._ensure_all_stored(plan, first_answer)

        checkout_path = self._create_checkout(plan)
        return self._result(plan, checkout_path)

    # -- collecting, hashing and sending at once ----------------------------------------
    def _submit_streaming(self) -> SubmitResult:
        """Collect on a thread and hash each file as soon as the collector finds it; once
        more than ``tuning.hash_first_bytes`` need hashing, ask and upload as checksums come in.

        Reading the libraries then no longer delays the first upload. The end is the same
        as ``_submit``: a requirements call over the WHOLE list before the checkout (unless
        the batches already covered every file and our uploads stored all they asked
        for), and when (nearly) everything came from the checksum cache, that one call is
        the only one. The bar stays in COLLECTING (fraction 0) while totals still grow, so it never
        moves back; with 'fail on missing' nothing is asked or sent before the plan is
        complete.
        """
        opts = self.options
        if opts.cache_dir is not None:
            self._cache = ChecksumCache(Path(opts.cache_dir) / CACHE_FILE_NAME)
        work = PackPlan(main_blend=self.blend, project_root=self.blend.parent,
                        blend_checkout_path="")
        self._plan = work
        st = _Stream(files=work.files, last_flush=self._clock())
        inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        todo: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        workers: list[threading.Thread] = []

        found: list[tuple[PlanFile, FileStat]] = []

        def on_file(f: PlanFile) -> None:
            # The stat and the cache lookup are done here, on the collector's thread, and
            # files are handed over in small batches: a main thread that woke for each file
            # and made system calls of its own would fight the collector for the GIL.
            found.append((f, FileStat.of(f.source)))
            if len(found) >= STREAM_BATCH:
                hand_over()

        def hand_over() -> None:
            if found:
                # One cache query per batch, not per file.
                shas = self._cache.lookup_many([stat for _, stat in found])
                inbox.put(("files", [(f, stat, sha)
                                     for (f, stat), sha in zip(found, shas, strict=True)]))
                found.clear()

        def on_progress(text: str) -> None:
            hand_over()  # the collector moves on to the next .blend: send what it found
            self._tracker.set_phase(Phase.COLLECTING, text)

        def collect_thread() -> None:
            try:
                plan = self._collect(cancel=self._collect_stop, on_progress=on_progress,
                                     on_file=on_file)
            except BaseException as exc:  # handed to the main loop
                inbox.put(("error", exc))
                return
            with self._lock:
                self._collected = plan
            hand_over()
            inbox.put(("plan", plan))

        def hash_worker() -> None:
            # Results go to the main thread in batches: waking it for every small file
            # costs a GIL hand-off each. A batch is handed over before this thread would
            # wait for more work, so no checksum is held back while there is nothing to do.
            done: list[tuple[int, _Hashed]] = []
            while not self._hash_stop.is_set():
                if done and (todo.empty() or len(done) >= HASHED_BATCH):
                    inbox.put(("hashed", done))
                    done = []
                item = todo.get()
                if item is None:
                    break
                index, gen = item
                try:
                    done.append((gen, self._hash_one(index, work)))
                except BaseException as exc:  # handed to the main loop
                    inbox.put(("error", exc))
                    return
            if done:
                inbox.put(("hashed", done))

        def want_hash(index: int) -> None:
            if not workers:
                for n in range(self._hash_workers()):
                    t = threading.Thread(target=hash_worker, name=f"shaman-hash-{n}",
                                         daemon=True)
                    t.start()
                    workers.append(t)
            todo.put((index, st.gen.get(index, 0)))

        collector = threading.Thread(target=collect_thread, name="shaman-collect", daemon=True)
        collector.start()
        real: PackPlan | None = None
        ok = False
        try:
            while st.collecting or st.outstanding:
                try:
                    kind, item = inbox.get(timeout=0.2)
                except queue.Empty:
                    self._raise_if_cancelled()
                    self._flush_batch(st, force=False)
                    continue
                self._raise_if_cancelled()
                if kind == "files":
                    for f, stat, sha in item:
                        self._arrive(st, f, want_hash, stat, sha)
                    self._report_hits(st)
                elif kind == "hashed":
                    if self._pool is not None:
                        self._pool.raise_if_failed()  # an upload failed: stop the rest
                    current: list[int] = []
                    for gen, hashed in item:
                        st.outstanding -= 1
                        if gen != st.gen.get(hashed.index, 0):
                            continue  # the entry was replaced since; its new one is queued
                        self._set_spec(hashed.index, FileSpec(
                            hashed.sha, hashed.stat.size, work.files[hashed.index].checkout_path))
                        self._cache.put(hashed.stat, hashed.sha)
                        current.append(hashed.index)
                    if current:
                        self._tracker.file_hashed(count=len(current))
                    for index in current:
                        self._take(st, index)
                elif kind == "plan":
                    real = item
                    self._plan_arrived(st, real, want_hash)
                else:
                    raise item
                self._maybe_overlap(st)
            ok = True
        finally:
            self._collect_stop.set()  # a no-op once the collector is done
            if not ok:
                self._hash_stop.set()
            for _ in workers:
                todo.put(None)
            for t in workers:
                t.join()
            collector.join()
            self._cache.flush()
        assert real is not None
        if st.overlap:
            real.files = work.files  # the streaming order: upload threads hold its indices
            self._plan = real
            self._flush_batch(st, force=True)
            self._tracker.set_phase(Phase.UPLOADING)
            self._wait_uploads()
            self._ensure_all_stored(real, [] if self._all_confirmed() else None)
        else:
            # Nothing asked yet: number the files in the plan's order (the main file first).
            self._reindex(work.files, real.files)
            self._plan = real
            self._tracker.set_phase(Phase.CHECKING)
            self._ensure_all_stored(real, self._ask_all(real))
        log.info("checksum cache: %d hits, %d hashed", self._cache_hits,
                 len(real.files) - self._cache_hits)
        checkout_path = self._create_checkout(real)
        return self._result(real, checkout_path)

    def _arrive(
        self,
        st: _Stream,
        f: PlanFile,
        want_hash: Callable[[int], None],
        stat: FileStat | None = None,
        sha: str | None = None,
    ) -> None:
        """A file the collector found: its checksum from the cache, or queue it to hash.

        Its checkout path is checked with the whole plan's, before the final requirements
        call and the checkout (a batch call only names it to the server)."""
        index = st.index_of.get(f.checkout_path)
        if index is None:
            index = len(st.files)
            st.files.append(f)
            st.index_of[f.checkout_path] = index
        else:  # the plan holds another entry for it (a library read after it was found)
            st.files[index] = f
            st.gen[index] = st.gen.get(index, 0) + 1
        if stat is None:
            stat = FileStat.of(f.source)
            sha = self._cache.lookup(stat)
        self._stats[index] = stat
        st.known_bytes += stat.size
        if sha is None:
            st.outstanding += 1
            st.miss_bytes += stat.size
            want_hash(index)
            return
        self._cache_hits += 1
        self._set_spec(index, FileSpec(sha, stat.size, f.checkout_path))
        st.hit_bytes += stat.size
        st.hit_files += 1
        self._take(st, index)

    def _report_hits(self, st: _Stream) -> None:
        """Tell the bar about a batch of arrivals at once (not one event per file)."""
        self._tracker.set_hash_total(len(st.files), st.known_bytes)
        if st.hit_files:
            self._tracker.hashed_bytes(st.hit_bytes)
            self._tracker.file_hashed(count=st.hit_files)
            st.hit_bytes = st.hit_files = 0

    def _plan_arrived(
        self, st: _Stream, plan: PackPlan, want_hash: Callable[[int], None]
    ) -> None:
        """The collector is done: check the plan, take in the files it held back."""
        st.collecting = False
        self._check_missing(plan)
        self._check_plan(plan)
        for f in plan.files:
            index = st.index_of.get(f.checkout_path)
            if index is None or st.files[index] is not f:
                self._arrive(st, f, want_hash)
        self._report_hits(st)
        self._tracker.set_phase(Phase.HASHING)

    def _take(self, st: _Stream, index: int) -> None:
        """A checksum is known: hold it, or once overlapping, add it to the next batch."""
        if not st.overlap:
            st.held.append(index)
            return
        spec = self._specs[index]
        st.batch.append(spec)
        st.batch_bytes += spec.size
        self._flush_batch(st, force=False)

    def _maybe_overlap(self, st: _Stream) -> None:
        """Start asking and uploading once enough is left to hash for it to pay off."""
        if st.overlap or st.miss_bytes <= self.options.tuning.hash_first_bytes:
            return
        if st.collecting and self.options.fail_on_missing:
            return  # a missing file found later must stop the submission before any upload
        st.overlap = True
        st.batch = [self._specs[i] for i in st.held]
        st.batch_bytes = sum(spec.size for spec in st.batch)
        st.held = []
        self._flush_batch(st, force=bool(st.batch))

    def _flush_batch(self, st: _Stream, *, force: bool) -> None:
        if not st.overlap or not st.batch:
            return
        now = self._clock()
        if (
            force
            or st.first
            or len(st.batch) >= BATCH_FILES
            or st.batch_bytes >= BATCH_BYTES
            or now - st.last_flush >= BATCH_SECONDS
            or self._uploads_running_low(len(st.batch), now - st.last_flush)
        ):
            batch, st.batch, st.batch_bytes = st.batch, [], 0
            st.last_flush, st.first = now, False
            self._ask_and_enqueue(batch)

    def _all_confirmed(self) -> bool:
        """Every file was in a requirements batch, and every content the server asked for
        is stored (our upload answered 200, or its status said so): asking about the
        whole list once more would only repeat that. The checkout still checks, and a
        blob lost in between is sent again (``MissingFilesAtCheckout``)."""
        with self._lock:
            held = {key for key, holders in self._by_key.items() if holders}
            return held <= self._asked and self._queued <= self._finished

    def _uploads_running_low(self, batched: int, since_last: float) -> bool:
        """True when the upload threads are about to run out of work and the batch is
        worth a requirements call (each costs a round trip and the server's time)."""
        if batched < LOW_WATER_MIN_FILES and since_last < LOW_WATER_MIN_SECONDS:
            return False
        pool = self._pool
        return pool is None or pool.backlog() < LOW_WATER_PER_JOB * self.options.jobs

    def _reindex(self, old: list[PlanFile], new: list[PlanFile]) -> None:
        """Renumber checksums and stats from the streaming order to the plan's order."""
        position = {id(f): i for i, f in enumerate(old)}
        specs, stats = self._specs, self._stats
        with self._lock:
            self._specs, self._stats, self._by_key = {}, {}, {}
        for i, f in enumerate(new):
            j = position[id(f)]
            self._stats[i] = stats[j]
            self._set_spec(i, specs[j])

    def _make_client(self) -> None:
        opts = self.options
        settings = opts.client_settings
        # One pooled connection per upload thread, plus the main thread's calls.
        settings = replace(settings, pool_size=max(settings.pool_size, opts.jobs + 2))
        client = ShamanClient(opts.server_url, settings)
        with self._lock:
            self._client = client
            cancelled = self.cancel_event.is_set()
        if cancelled:
            client.abort()
            self._raise_if_cancelled()

    def _check_plan(self, plan: PackPlan) -> None:
        seen: dict[str, Path] = {}
        for f in plan.files:
            _check_checkout_path(f.checkout_path, f.source)
            other = seen.setdefault(f.checkout_path, f.source)
            if other != f.source:
                raise ShamanError(
                    f"Two different files would land at {f.checkout_path!r} in the checkout "
                    f"({other} and {f.source}); nothing was sent."
                )

    # -- hashing ------------------------------------------------------------------------
    def _hash_from_cache(self, plan: PackPlan) -> list[int]:
        """Fill specs from the checksum cache; return the indices still to hash."""
        total = sum(f.size for f in plan.files)
        self._tracker.set_hash_total(len(plan.files), total)
        self._tracker.set_phase(Phase.HASHING)
        misses = []
        hit_bytes = hit_files = 0
        for i, f in enumerate(plan.files):
            if i % 256 == 0:
                self._raise_if_cancelled()
                if hit_files:  # report in steps: 30,000 events would be mostly noise
                    self._tracker.hashed_bytes(hit_bytes, f.checkout_path)
                    self._tracker.file_hashed(count=hit_files)
                    hit_bytes = hit_files = 0
            stat = FileStat.of(f.source)
            self._stats[i] = stat
            sha = self._cache.lookup(stat)
            if sha is None:
                misses.append(i)
                continue
            self._cache_hits += 1
            self._set_spec(i, FileSpec(sha, stat.size, f.checkout_path))
            hit_bytes += stat.size
            hit_files += 1
        if hit_files:
            self._tracker.hashed_bytes(hit_bytes)
            self._tracker.file_hashed(count=hit_files)
        if misses:
            # Sizes on disk may differ from the plan's; the bar goes by what is read.
            missing_bytes = sum(self._stats[i].size for i in misses)
            hit_bytes = sum(self._stats[i].size for i in self._specs)
            self._tracker.set_hash_total(len(plan.files), missing_bytes + hit_bytes)
        log.info("checksum cache: %d hits, %d to hash", self._cache_hits, len(misses))
        return misses

    def _hash_one(self, index: int, plan: PackPlan) -> _Hashed:
        """Hash a file; if it changes while being read, once more, then give up."""
        f = plan.files[index]
        before = self._stats[index]
        for attempt in range(2):
            sha, nbytes = checksums.sha256_file(
                f.source,
                on_bytes=lambda n: self._tracker.hashed_bytes(n, f.checkout_path),
                cancel=self._hash_stop,
                size_hint=before.size,
            )
            after = FileStat.of(f.source)
            if after == before and nbytes == before.size:
                return _Hashed(index, before, sha)
            self._tracker.hashed_bytes(-nbytes)
            before = after
            self._stats[index] = after
            log.info("%s changed while it was hashed (attempt %d)", f.source, attempt + 1)
        raise LocalFileChanged(
            f"{f.source} keeps changing while it is read; save it, wait for whatever is "
            "writing it to finish, and submit again.",
            path=str(f.source),
        )

    def _hash_workers(self) -> int:
        """One core is left to the upload threads (and to Blender's interface, or a local
        server): on 2 cores a second hashing thread slowed a cold submission down."""
        return max(1, min(self.options.jobs, (os.cpu_count() or 2) - 1, 8))

    def _iter_hashed(self, misses: list[int], plan: PackPlan) -> Iterator[_Hashed]:
        """Hash on a few threads, yielding results as they finish (cancel-aware).

        Plain threads and two queues rather than futures: waiting on thousands of
        futures at once costs time per future per wait, which adds up to seconds.
        """
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in misses:
            todo.put(i)
        results: queue.SimpleQueue[tuple[_Hashed | None, BaseException | None]] = (
            queue.SimpleQueue()
        )

        def worker() -> None:
            while not self._hash_stop.is_set():
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    results.put((self._hash_one(index, plan), None))
                except BaseException as exc:  # handed to the consumer
                    results.put((None, exc))
                    return

        threads = [
            threading.Thread(target=worker, name=f"shaman-hash-{n}", daemon=True)
            for n in range(min(self._hash_workers(), len(misses)))
        ]
        for t in threads:
            t.start()
        remaining = len(misses)
        try:
            while remaining:
                try:
                    hashed, error = results.get(timeout=0.2)
                except queue.Empty:
                    self._raise_if_cancelled()
                    continue
                if error is not None:
                    raise error
                assert hashed is not None
                remaining -= 1
                self._set_spec(
                    hashed.index,
                    FileSpec(hashed.sha, hashed.stat.size, plan.files[hashed.index].checkout_path),
                )
                self._cache.put(hashed.stat, hashed.sha)
                self._tracker.file_hashed()
                self._raise_if_cancelled()
                yield hashed
        finally:
            # Leaving early (cancel, a failed requirements call): stop the hashing too.
            if remaining:
                self._hash_stop.set()
            for t in threads:
                t.join()
            self._cache.flush()

    def _hash_all(self, misses: list[int], plan: PackPlan) -> None:
        for _ in self._iter_hashed(misses, plan):
            pass

    def _hash_and_upload(self, misses: list[int], plan: PackPlan) -> None:
        """Hashing and uploading at once: ask about each batch of new checksums as it is
        ready and start uploading what the server lacks."""
        already = [self._specs[i] for i in sorted(self._specs)]
        if already:
            self._ask_and_enqueue(already)
        batch: list[FileSpec] = []
        batch_bytes = 0
        last_flush = self._clock()
        first = True
        for hashed in self._iter_hashed(misses, plan):
            if self._pool is not None:
                self._pool.raise_if_failed()  # an upload failed: stop hashing the rest
            spec = self._specs[hashed.index]
            batch.append(spec)
            batch_bytes += spec.size
            now = self._clock()
            if (
                first
                or len(batch) >= BATCH_FILES
                or batch_bytes >= BATCH_BYTES
                or now - last_flush >= BATCH_SECONDS
                or self._uploads_running_low(len(batch), now - last_flush)
            ):
                self._ask_and_enqueue(batch)
                batch, batch_bytes, last_flush, first = [], 0, now, False
        if batch:
            self._ask_and_enqueue(batch)
        self._tracker.set_phase(Phase.UPLOADING)
        self._wait_uploads()

    # -- requirements and uploads -------------------------------------------------------
    def _all_specs(self, plan: PackPlan) -> list[FileSpec]:
        return [self._specs[i] for i in range(len(plan.files))]

    def _requirements(self, specs: list[FileSpec]) -> list[Any]:
        self._raise_if_cancelled()
        assert self._client is not None
        return list(self._client.requirements(specs))

    def _ask_all(self, plan: PackPlan) -> list[Any]:
        """Requirements over the whole plan: the only proof that everything is stored.

        The caller marks the bytes as checked once the upload work is counted, so the
        progress bar never moves back."""
        return self._requirements(self._all_specs(plan))

    def _count_upload_work(self, key: Key) -> bool:
        """True the first time a content needs sending (again only after it was done):
        the bar's upload total counts it once."""
        with self._lock:
            fresh = key not in self._counted or key in self._finished
            self._counted.add(key)
            self._finished.discard(key)
        return fresh

    def _finish(self, key: Key, name: str, *, sent_by_us: bool) -> None:
        """One content is on the server: count it as sent by us or by someone else."""
        with self._lock:
            self._finished.add(key)
            if sent_by_us:
                self._uploaded[key] = name
        self._tracker.file_uploaded(0 if sent_by_us else key[1])

    def _set_spec(self, index: int, spec: FileSpec) -> None:
        """Record a file's checksum, keeping the content -> files index in step."""
        with self._lock:
            old = self._specs.get(index)
            if old is not None:
                holders = self._by_key.get((old.sha, old.size), [])
                if index in holders:
                    holders.remove(index)
            self._specs[index] = spec
            self._by_key.setdefault((spec.sha, spec.size), []).append(index)

    def _sources_for(self, key: Key) -> list[Path]:
        assert self._plan is not None
        with self._lock:
            indices = list(self._by_key.get(key, ()))
        out: list[Path] = []
        for i in indices:
            src = self._plan.files[i].source
            if src not in out:
                out.append(src)
        return out

    def _ask_and_enqueue(self, specs: list[FileSpec]) -> None:
        answer = self._requirements(specs)
        with self._lock:
            self._asked.update((spec.sha, spec.size) for spec in specs)
        self._enqueue(answer, only_new=True, checked=sum(spec.size for spec in specs))

    def _enqueue(
        self,
        answer: Iterable[Any],
        *,
        only_new: bool,
        checked: int | None,
        take_over: bool = False,
    ) -> int:
        """Queue uploads for a requirements answer: ``unknown`` first, then ``uploading``.

        ``checked`` is how many hashed bytes the answer covers (None: the whole plan);
        the bar learns it together with the new upload work, before any upload starts.
        """
        items = sorted(answer, key=lambda r: 0 if r.status == "unknown" else 1)
        work: list[_Content] = []
        fresh_files = fresh_bytes = 0
        for req in items:
            key = (req.sha, req.size)
            with self._lock:
                if only_new and key in self._queued:
                    continue
                self._queued.add(key)
            sources = self._sources_for(key)
            if not sources:
                log.warning("requirements named content %s/%d this plan does not have", *key)
                continue
            if self._count_upload_work(key):
                fresh_files += 1
                fresh_bytes += req.size
            work.append(_Content(req.sha, req.size, sources, req.path, can_defer=not take_over))
        self._tracker.answered(checked, fresh_files, fresh_bytes)
        if work:
            pool = self._get_pool()
            for item in work:
                pool.put(item)
        return len(work)

    def _get_pool(self) -> UploadPool[_Content]:
        with self._lock:
            self._raise_if_cancelled()
            if self._pool is None:
                assert self._client is not None
                client = self._client
                lanes = [_PipedLane(conn, client, self._stored_by_lane)
                         for conn in client.lanes()]
                self._pool = UploadPool(self.options.jobs, self._upload, name="shaman-upload",
                                        fast=lanes)
            return self._pool

    def _stored_by_lane(self, item: _Content) -> None:
        self._tracker.uploaded_bytes(item.size, item.name)
        self._finish(item.key, item.name, sent_by_us=True)

    def _wait_uploads(self) -> None:
        if self._pool is not None:
            self._pool.wait_idle(should_stop=self.cancel_event.is_set)
        self._raise_if_cancelled()

    def _ensure_all_stored(self, plan: PackPlan, first_answer: list[Any] | None) -> None:
        """Requirements over the whole list until it comes back empty (bounded)."""
        answer = first_answer
        rounds = waits = 0
        while True:
            if answer is None:
                self._tracker.set_phase(Phase.CHECKING)
                answer = self._ask_all(plan)
            if not answer:
                self._tracker.answered(None)
                return
            if all(r.status == "uploading" for r in answer):
                # Someone else is sending these: waiting is not failing.
                waits += 1
                if waits > self.options.tuning.max_wait_rounds:
                    break
            else:
                rounds += 1
                if rounds > self.options.tuning.max_rounds:
                    break
            self._tracker.set_phase(Phase.UPLOADING)
            self._enqueue(answer, only_new=False, checked=None,
                          take_over=waits > self.options.tuning.max_wait_rounds // 2)
            self._wait_uploads()
            answer = None
        names = sorted({r.path for r in answer})
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise ShamanError(
            f"The server at {self.options.server_url} still lacks {len(names)} file(s) after "
            f"{rounds} upload rounds and {waits} waits for other uploads: {shown}. "
            "Check the Manager's log and disk space."
        )

    def _upload(self, item: _Content) -> None:
        """One upload attempt of one content, run on a pool thread."""
        self._raise_if_cancelled()
        client = self._client
        assert client is not None and self._pool is not None
        source = item.sources[0]
        sent = 0
        first_attempt, item.first_attempt = item.first_attempt, None
        if first_attempt is not None:
            # The fast lane sent the body and reported nothing: this call takes its
            # answer as its first attempt; count the bytes as sent for now.
            sent = item.size
            self._tracker.uploaded_bytes(item.size, item.name)

        def on_bytes(n: int) -> None:
            nonlocal sent
            sent += n
            self._tracker.uploaded_bytes(n, item.name)

        try:
            outcome = client.upload(
                item.sha,
                item.size,
                source,
                original_filename=item.name,
                can_defer=item.can_defer,
                on_bytes=on_bytes,
                cancel=self.cancel_event,
                first_attempt=first_attempt,
            )
        except UploadReset:
            self._tracker.uploaded_bytes(-sent)
            self._raise_if_cancelled()
            item.resets += 1
            self._after_unclear(item, "the connection dropped")
            return
        except (ChecksumMismatch, LocalFileChanged) as exc:
            self._tracker.uploaded_bytes(-sent)
            self._after_mismatch(item, exc)
            return
        except ShamanError as exc:
            # A rewritten copy is gone by the time anyone reads this: name the artist's file.
            assert self._plan is not None
            original = next((f.original for f in self._plan.files if f.source == source), source)
            if original != source and exc.args:
                exc.args = (str(exc).replace(str(source), f"{original} (its rewritten copy)"),)
            raise
        if outcome == UploadResult.STORED:
            # (A lane's body, read whole in one go, is a snapshot checked against the hashed
            # size: the lane settles those itself, so a streamed body is checked here.)
            if self._changed_while_sent(item.key, source):
                self._tracker.uploaded_bytes(-sent)
                self._after_mismatch(item, LocalFileChanged(
                    f"{source} changed while it was being uploaded", path=str(source)))
                return
            self._finish(item.key, item.name, sent_by_us=True)
        elif outcome == UploadResult.DEFERRED:
            self._tracker.uploaded_bytes(-sent)
            item.defers += 1
            if item.defers > len(self.options.tuning.defer_delays_s):
                log.info("%s: still uploaded by someone else; left for the next round",
                         item.name)
                return
            self._pool.put(item, delay_s=self.options.tuning.defer_delays_s[item.defers - 1])
        else:  # ALREADY_KNOWN: not proof, ask
            self._tracker.uploaded_bytes(-sent)
            self._after_unclear(item, "the server already knew it")

    def _changed_while_sent(self, key: Key, source: Path) -> bool:
        """Bytes appended during an upload leave the sent ones valid (no 417); only the
        file's size and mtime tell that the checkout would hold an old version."""
        assert self._plan is not None
        plan = self._plan
        with self._lock:
            indices = [i for i in self._by_key.get(key, ()) if plan.files[i].source == source]
        try:
            now = FileStat.of(source)
        except LocalFileChanged:
            return False  # deleted since: there is nothing newer to send
        return any(self._stats[i] != now for i in indices)

    def _after_unclear(self, item: _Content, why: str) -> None:
        """After a reset or a 208: stored means done; otherwise send it again later."""
        assert self._client is not None and self._pool is not None
        status = self._client.file_status(item.sha, item.size)
        log.debug("%s: %s; status now %s", item.name, why, status)
        if status == "stored":
            self._finish(item.key, item.name, sent_by_us=False)
            return
        if item.resets > self.options.tuning.max_resets_per_file:
            raise ShamanError(
                f"Uploading {item.sources[0]} to {self.options.server_url} was cut off "
                f"{item.resets} times; check the network and the Manager's log."
            )
        delay = 0.05 if status == "uploading" else 0.0
        self._pool.put(item, delay_s=delay)

    def _after_mismatch(self, item: _Content, exc: ShamanError) -> None:
        """417 or a size change on disk: hash that file again, once, and send it again."""
        assert self._plan is not None and self._pool is not None
        source = item.sources[0]
        with self._lock:
            again = source in self._rehashed
            self._rehashed.add(source)
        if again:
            detail = getattr(exc, "server_message", "") or str(exc)
            raise ChecksumMismatch(
                f"The server at {self.options.server_url} received different bytes than "
                f"{source} held when it was hashed, even after hashing it again ({detail}). "
                "Is something still writing that file? Save it and submit again.",
                url=self.options.server_url,
                status=417,
                server_message=detail,
            ) from exc
        indices = [i for i, f in enumerate(self._plan.files) if f.source == source]
        self._cache.forget({self._stats[i].path for i in indices})
        stat = FileStat.of(source)
        sha, nbytes = checksums.sha256_file(source, cancel=self.cancel_event)
        log.info("%s re-hashed after %s: %s/%d", source, type(exc).__name__, sha, nbytes)
        for i in indices:
            self._stats[i] = stat
            self._set_spec(i, FileSpec(sha, nbytes, self._plan.files[i].checkout_path))
        if FileStat.of(source) == stat:
            self._cache.put(stat, sha)
        if (sha, nbytes) == item.key:
            self._pool.put(item)
            return
        others = [s for s in item.sources if s != source]
        if others:
            self._pool.put(_Content(item.sha, item.size, others, item.name))
        else:  # the old content is needed by no file any more
            self._tracker.add_upload_work(-1, -item.size)
        with self._lock:
            self._queued.add((sha, nbytes))
        if self._count_upload_work((sha, nbytes)):
            self._tracker.add_upload_work(1, nbytes)
        self._pool.put(_Content(sha, nbytes, [source], item.name))

    # -- checkout -----------------------------------------------------------------------
    def _create_checkout(self, plan: PackPlan) -> str:
        opts = self.options
        client = self._client
        assert client is not None
        self._tracker.set_phase(Phase.CHECKING_OUT)
        blend_name = opts.as_name or self.blend.name
        base = checkout_name.render_checkout_name(opts.checkout_template, blend_name=blend_name)
        specs = self._all_specs(plan)
        path = base
        resent = False
        for _attempt in range(MAX_NAME_ATTEMPTS):
            with self._lock:
                self._raise_if_cancelled()
                self._create_sent = True
            try:
                returned = client.create_checkout(specs, path)
            except CheckoutExists:
                suffix = "".join(
                    secrets.choice(string.ascii_lowercase + string.digits) for _ in range(4)
                )
                log.info("checkout %s exists; trying %s-%s", path, base, suffix)
                path = f"{base}-{suffix}"
            except MissingFilesAtCheckout:
                if resent:
                    raise
                resent = True
                log.warning("the server lost files before the checkout; sending them again")
                with self._lock:
                    self._create_sent = False
                self._ensure_all_stored(plan, None)
                self._tracker.set_phase(Phase.CHECKING_OUT)
            else:
                return returned
            with self._lock:
                self._create_sent = False
        raise ShamanError(
            f"The server at {opts.server_url} refused {MAX_NAME_ATTEMPTS} checkout names "
            f"starting with {base!r} as taken; choose another checkout path template."
        )

    # -- results ------------------------------------------------------------------------
    def _result(
        self, plan: PackPlan, checkout_path: str | None, *, dry_answer: list[Any] | None = None
    ) -> SubmitResult:
        sizes = [self._specs[i].size for i in range(len(plan.files))]
        if dry_answer is not None:
            send = {(r.sha, r.size): r.path for r in dry_answer}
        else:
            send = dict(self._uploaded)
        sent_keys = set(send)
        stored = [
            i for i in range(len(plan.files))
            if (self._specs[i].sha, self._specs[i].size) not in sent_keys
        ]
        worker = (
            f"{{jobs}}/{checkout_path}/{plan.blend_checkout_path}" if checkout_path else None
        )
        warnings = list(plan.warnings)
        if self._cache.status in ("locked", "unusable"):
            warnings.append(
                f"The checksum cache {self._cache.path} could not be used ({self._cache.status});"
                " every file was hashed."
            )
        return SubmitResult(
            checkout_path=checkout_path,
            blend_checkout_path=plan.blend_checkout_path,
            worker_blend_path=worker,
            files_total=len(plan.files),
            bytes_total=sum(sizes),
            files_uploaded=len(send),
            bytes_uploaded=sum(size for _sha, size in send),
            files_already_stored=len(stored),
            bytes_already_stored=sum(sizes[i] for i in stored),
            missing=list(plan.missing),
            warnings=warnings,
            phase_seconds=self._tracker.phase_seconds(),
            dry_run=self.options.dry_run,
            to_upload=sorted(send.values()),
        )

    def _record(
        self, plan: PackPlan | None, result: SubmitResult | None, error: BaseException | None
    ) -> None:
        if self.options.cache_dir is None:
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
            "app": dict(self.options.app_info),
            "server": redact_url(self.options.server_url),
            "blend": str(self.blend),
            "status": status,
            "error": str(error) if error is not None else None,
            "cache_hits": self._cache_hits,
            "phase_seconds": {k: round(v, 4) for k, v in self._tracker.phase_seconds().items()},
        }
        if result is not None:
            record.update(result.to_json())
            record.pop("to_upload", None)
        elif plan is not None:
            record["files_total"] = len(plan.files)
            record["bytes_total"] = plan.total_bytes
        try:
            append_history(Path(self.options.cache_dir), record)
        except OSError as exc:
            log.warning("could not append to the submission history: %s", exc)

    # -- plumbing -----------------------------------------------------------------------
    def _raise_if_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled(
                "The submission was cancelled; files already uploaded stay on the server "
                "and will be skipped next time."
            )

    def _shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            client = self._client
        if pool is not None:
            pool.stop()
            pool.join(timeout=30)
        self._cache.close()
        if client is not None:
            client.close()

