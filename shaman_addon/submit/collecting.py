"""The collecting stage: ``collect()`` on a thread of its own, feeding files as it goes.

Each dependency is handed over as soon as the collector has placed it, so hashing and
uploading start while the libraries are still being read. The stat and the checksum
cache lookup are done here, on the collector's thread, once per batch of files: a main
thread woken for every file, making system calls of its own, would fight the collector
for the GIL.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..collect.plan import PackPlan, PlanFile
from ..progress import Phase, ProgressTracker
from .checksums import ChecksumCache, FileStat
from .messages import FilesFound, Inbox, PlanReady, StageFailed
from .options import SubmitOptions


class CollectStage:
    """Runs ``collect()`` for one submission and reports to ``inbox``."""

    def __init__(self, blend: Path, options: SubmitOptions, inbox: Inbox,
                 tracker: ProgressTracker, cache: ChecksumCache) -> None:
        self._blend = blend
        self._options = options
        self._inbox = inbox
        self._tracker = tracker
        self._cache = cache
        self._found: list[PlanFile] = []
        self._stats: list[FileStat] = []
        self._batch = options.tuning.stream_batch
        self._lock = threading.Lock()
        self._collected: PackPlan | None = None
        self._abandoned = False
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shaman-collect", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop collecting at the next file or library (a no-op once it is done)."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the collector to end (at most ``timeout`` seconds); True if it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def abandon(self) -> None:
        """Leave the collector behind without waiting: it may be stuck inside BAT on a
        damaged .blend, where nothing can interrupt it. It is a daemon thread; should it
        ever finish, it removes the temporary copies of the plan it made itself."""
        with self._lock:
            self._abandoned = True
        self.stop_event.set()

    def take_plan(self) -> PackPlan | None:
        """The plan this stage made, for the caller to clean up; None when it made none
        or it was taken already."""
        with self._lock:
            plan, self._collected = self._collected, None
        return plan

    def _run(self) -> None:
        from ..collect import collector  # imported late: it pulls in BAT

        try:
            plan = collector.collect(
                self._blend,
                project_root=self._options.project_root,
                as_name=self._options.as_name,
                cache_dir=self._options.cache_dir,
                cancel=self.stop_event,
                on_progress=self._on_progress,
                on_file=self._on_file,
                allow_credentials=self._options.allow_credential_files,
            )
        except BaseException as exc:  # handed to the main thread, which raises it
            self._inbox.put(StageFailed("collecting", exc))
            return
        with self._lock:
            abandoned = self._abandoned
            if not abandoned:
                self._collected = plan
        if abandoned:
            plan.cleanup()
            return
        self._hand_over()
        self._inbox.put(PlanReady(plan))

    def _on_file(self, file: PlanFile, st: os.stat_result) -> None:
        self._found.append(file)
        self._stats.append(FileStat.from_stat(file.source_path, st))
        if len(self._found) >= self._batch:
            self._hand_over()
            # The first files go at once, so hashing starts; then batches grow, so a
            # shot collected in one go (an unchanged one) costs few messages and queries.
            self._batch = min(2 * self._batch, self._options.tuning.stream_batch_max)

    def _on_progress(self, text: str) -> None:
        self._hand_over()  # the collector moves on to the next .blend: send what it found
        self._tracker.set_phase(Phase.COLLECTING, text)

    def _hand_over(self) -> None:
        if not self._found:
            return
        files, stats, self._found, self._stats = self._found, self._stats, [], []
        self._inbox.put(FilesFound(files, stats, self._cache.lookup_many(stats)))
