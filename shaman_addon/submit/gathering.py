"""Gathering: the main thread's loop while files are collected and hashed.

The collector and the hashing threads report to one inbox; this loop takes each file
in (its checksum from the cache, or queued for hashing), hands every known checksum to
the ``Asker``, and once more than ``Tuning.hash_first_bytes`` need hashing, lets it ask
and upload while hashing goes on. It ends when the plan is complete and every file has
its checksum. The bar stays in COLLECTING (fraction 0) while the totals still grow, so
it never moves back; with 'fail on missing' nothing is asked or sent before the plan is
complete.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..collect.plan import PackPlan, PlanFile
from ..errors import CheckoutPathClash, MissingDependencies, UnsafeCheckoutPath
from ..progress import Phase, ProgressTracker
from ..shaman.protocol import is_safe_checkout_path
from .asking import Asker
from .checksums import ChecksumCache, FileStat
from .collecting import CollectStage
from .contents import Contents
from .hashing import HashStage
from .messages import FilesFound, HashesReady, Inbox, Message, PlanReady, StageFailed
from .options import SubmitOptions

log = logging.getLogger(__name__)

COLLECTOR_GRACE_S = 1.0
"""On cancel or failure, how long the collector may take to stop (it checks at each file
and library) before it is abandoned: inside BAT, on a damaged .blend, it may never."""

POLL_S = 0.05
"""How often the loop wakes without news: to notice a cancel, take the checksums
finished since (the hashing threads ring only per batch) and send a due batch."""


@dataclass
class _Counts:
    known_bytes: int = 0  # every file seen so far
    miss_bytes: int = 0  # of those, to be hashed
    hit_bytes: int = 0  # from the cache, not yet told to the tracker
    hit_files: int = 0
    cache_hits: int = 0
    outstanding: int = 0  # queued for hashing, result not in yet


class Gathering:
    """Collect and hash one submission's files (see the module docstring)."""

    def __init__(self, blend: Path, options: SubmitOptions, *, contents: Contents,
                 asker: Asker, tracker: ProgressTracker, cache: ChecksumCache,
                 collector: CollectStage, hashing: HashStage, inbox: Inbox,
                 raise_if_cancelled: Callable[[], None],
                 raise_if_upload_failed: Callable[[], None]) -> None:
        self._blend = blend
        self._options = options
        self._contents = contents
        self._asker = asker
        self._tracker = tracker
        self._cache = cache
        self._collector = collector
        self._hashing = hashing
        self._inbox = inbox
        self._raise_if_cancelled = raise_if_cancelled
        self._raise_if_upload_failed = raise_if_upload_failed
        self._counts = _Counts()
        self.plan: PackPlan | None = None

    @property
    def cache_hits(self) -> int:
        return self._counts.cache_hits

    def run(self) -> PackPlan:
        """Until the plan is complete and every checksum is known."""
        self._collector.start()
        ok = False
        try:
            while self.plan is None or self._counts.outstanding:
                message = self._next()
                if message is not None:
                    self._handle(message)
                self._maybe_overlap()
            ok = True
        finally:
            self._collector.stop()  # a no-op once the collector is done
            if not ok:
                self._hashing.stop()
            self._hashing.close()
            if ok:
                self._collector.join()  # it has handed over its plan: it is ending
            elif not self._collector.join(timeout=COLLECTOR_GRACE_S):
                self._collector.abandon()  # stuck inside BAT: left behind, never joined
            self._cache.flush()
        log.info("checksum cache: %d hits, %d hashed", self._counts.cache_hits,
                 len(self.plan.files) - self._counts.cache_hits)
        return self.plan

    def _next(self) -> Message | None:
        try:
            message = self._inbox.get(timeout=POLL_S)
        except queue.Empty:
            self._raise_if_cancelled()
            self._raise_if_upload_failed()  # every hashing thread may be waiting on it
            self._take_hashes()
            self._asker.flush(force=False)
            return None
        self._raise_if_cancelled()
        return message

    def _handle(self, message: Message) -> None:
        match message:
            case FilesFound(files=files, stats=stats, cached_shas=shas):
                self._arrive_many(files, stats, shas)
                self._report_hits()
            case HashesReady():
                self._raise_if_upload_failed()  # an upload failed: stop the rest
                self._take_hashes()
            case PlanReady(plan=plan):
                self._plan_arrived(plan)
            case StageFailed(stage=stage, error=error):
                log.debug("%s failed: %r", stage, error)
                raise error

    def _take_hashes(self) -> None:
        """Every checksum finished so far: record it, cache it, give it to the asker."""
        results = self._hashing.take()
        self._counts.outstanding -= len(results)
        current = [r for r in results if self._contents.is_current(r.entry)]
        if current:
            self._tracker.file_hashed(count=len(current))
        for result in current:
            spec = self._contents.set_checksum(result.entry, result.sha, result.stat.size,
                                               result.stat)
            self._cache.put(result.stat, result.sha)
            self._asker.take(spec)

    def _arrive(self, file: PlanFile) -> None:
        """A file the collector held back (a .blend): looked at here, then as a batch of
        one. (Checkout paths are checked with the whole plan's, before the final
        requirements call and the checkout; a batch call only names them to the
        server.)"""
        stat = FileStat.of(file.source_path)
        self._arrive_many([file], [stat], [self._cache.lookup(stat)])

    def _arrive_many(self, files: list[PlanFile], stats: list[FileStat],
                     shas: list[str | None]) -> None:
        """Files the collector placed, each with its stat and cached checksum (or None):
        recorded, and those without a checksum queued to hash."""
        specs, to_hash = self._contents.add_found(files, stats, shas)
        counts = self._counts
        counts.known_bytes += sum(stat.size for stat in stats)
        for entry in to_hash:
            counts.outstanding += 1
            counts.miss_bytes += entry.stat.size
            self._hashing.want(entry)
        counts.cache_hits += len(specs)
        counts.hit_files += len(specs)
        counts.hit_bytes += sum(spec.size for spec in specs)
        self._asker.take_many(specs)

    def _report_hits(self) -> None:
        """Tell the bar about a batch of arrivals at once (not one event per file)."""
        counts = self._counts
        self._tracker.set_hash_total(len(self._contents), counts.known_bytes)
        if counts.hit_files:
            self._tracker.hashed_bytes(counts.hit_bytes)
            self._tracker.file_hashed(count=counts.hit_files)
            counts.hit_bytes = counts.hit_files = 0

    def _plan_arrived(self, plan: PackPlan) -> None:
        """The collector is done: check the plan, take in the files it held back."""
        self.plan = self._collector.take_plan() or plan
        check_missing(plan, self._blend, fail=self._options.fail_on_missing)
        check_paths(plan)
        self._contents.retain({f.checkout_path for f in plan.files})
        for file in self._contents.not_held(plan.files):
            self._arrive(file)
        self._report_hits()
        self._tracker.set_phase(Phase.HASHING)

    def _maybe_overlap(self) -> None:
        """Start asking and uploading once enough is left to hash for it to pay off."""
        if self._asker.overlapping or self._options.dry_run:
            return
        if self._counts.miss_bytes <= self._options.tuning.hash_first_bytes:
            return
        if self.plan is None and self._options.fail_on_missing:
            return  # a missing file found later must stop the submission before any upload
        self._asker.start_overlapping()


def check_missing(plan: PackPlan, blend: Path, *, fail: bool) -> None:
    """With 'fail on missing', missing dependencies stop the submission here."""
    if not (plan.missing and fail):
        return
    listed = "; ".join(m.path for m in plan.missing[:10])
    more = f" and {len(plan.missing) - 10} more" if len(plan.missing) > 10 else ""
    count = len(plan.missing)
    what = "dependency" if count == 1 else "dependencies"
    verb = "is" if count == 1 else "are"
    raise MissingDependencies(
        f"{count} {what} of {blend} {verb} missing ({listed}{more}); "
        "nothing was sent because 'fail on missing' is set.",
        missing=tuple((m.path, tuple(m.referenced_by)) for m in plan.missing),
    )


def check_paths(plan: PackPlan) -> None:
    """The server does not check file paths: a bad one could escape the checkout, and
    two files at one path would lose one of them."""
    seen: dict[str, str] = {}
    for f in plan.files:
        if not is_safe_checkout_path(f.checkout_path):
            raise UnsafeCheckoutPath(
                f"The file {f.source} would land at {f.checkout_path!r} in the checkout, "
                "which is not a safe relative path; this is a bug in collecting the "
                "dependencies, nothing was sent.")
        other = seen.setdefault(f.checkout_path, f.source_path)
        if other != f.source_path:
            raise CheckoutPathClash(
                f"Two different files would land at {f.checkout_path!r} in the checkout "
                f"({other} and {f.source}); nothing was sent.")
