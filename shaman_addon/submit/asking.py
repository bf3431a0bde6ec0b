"""Asking the server which contents it lacks, and queueing their uploads.

While checksums come in, they are asked about in batches (the first at once, then by
size, age, or as soon as the upload threads run low), so uploads start long before the
last file is hashed. Before the checkout, a requirements call over the WHOLE list is the
only proof that everything is stored; it is repeated (bounded) until it comes back
empty, unless every file was in a batch and our own uploads stored all they were asked
for, in which case the checkout request checks the store itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from ..errors import FilesNeverStored
from ..progress import Phase, ProgressTracker
from ..shaman.client import FileRequirement, FileSpec, ShamanClient
from ..untrusted import quoted
from .contents import Contents, UploadLedger
from .options import SubmitOptions
from .uploading import UploadItem, Uploads

log = logging.getLogger(__name__)


class Asker:
    """The requirements calls of one submission (main thread only)."""

    def __init__(self, client: ShamanClient, contents: Contents, ledger: UploadLedger,
                 uploads: Callable[[], Uploads], tracker: ProgressTracker,
                 options: SubmitOptions, *, clock: Callable[[], float],
                 raise_if_cancelled: Callable[[], None]) -> None:
        self._client = client
        self._contents = contents
        self._ledger = ledger
        self._uploads = uploads  # made on first use: an unchanged resubmission needs none
        self._tracker = tracker
        self._options = options
        self._tuning = options.tuning
        self._clock = clock
        self._raise_if_cancelled = raise_if_cancelled
        self.overlapping = False
        self._held: list[FileSpec] = []  # known before overlapping; asked about later
        self._batch: list[FileSpec] = []
        self._batch_bytes = 0
        self._first = True
        self._last_flush = clock()

    # -- batches while hashing ----------------------------------------------------------

    def take(self, spec: FileSpec) -> None:
        """A checksum is known: hold it, or once overlapping, add it to the next batch."""
        if not self.overlapping:
            self._held.append(spec)
            return
        self._batch.append(spec)
        self._batch_bytes += spec.size
        self.flush(force=False)

    def take_many(self, specs: list[FileSpec]) -> None:
        """``take`` for each of ``specs``."""
        if not self.overlapping:
            self._held.extend(specs)
            return
        for spec in specs:
            self.take(spec)

    def start_overlapping(self) -> None:
        """From now on ask (and upload) while hashing goes on. What was held is asked
        about in batches of the usual size: with small files tens of thousands can be
        held, and one answer listing them all is tens of MB of parsed JSON at once."""
        self.overlapping = True
        held, self._held = self._held, []
        step = max(1, self._tuning.batch_files)
        for start in range(0, len(held), step):  # bounded: len(held) / step calls
            self._batch = held[start:start + step]
            self._batch_bytes = sum(spec.size for spec in self._batch)
            self.flush(force=True)

    def flush(self, *, force: bool) -> None:
        """Ask about the batch if it is due (always with ``force``)."""
        if not self.overlapping or not self._batch:
            return
        now = self._clock()
        tuning = self._tuning
        due = (force or self._first or len(self._batch) >= tuning.batch_files
               or self._batch_bytes >= tuning.batch_bytes
               or now - self._last_flush >= tuning.batch_seconds
               or self._uploads_running_low(len(self._batch), now - self._last_flush))
        if due:
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            self._last_flush, self._first = now, False
            self._ask_and_enqueue(batch)

    def _uploads_running_low(self, batched: int, since_last: float) -> bool:
        """True when the upload threads are about to run out of work and the batch is
        worth a requirements call (each costs a round trip and the server's time)."""
        tuning = self._tuning
        if batched < tuning.low_water_min_files and since_last < tuning.low_water_min_seconds:
            return False
        return self._uploads().backlog() < tuning.low_water_per_job * self._options.jobs

    def _ask_and_enqueue(self, specs: list[FileSpec]) -> None:
        answer = self.ask(specs)
        self._ledger.asked((spec.sha, spec.size) for spec in specs)
        self.enqueue(answer, only_new=True, checked=sum(spec.size for spec in specs))

    # -- the calls ----------------------------------------------------------------------

    def ask(self, specs: Sequence[FileSpec]) -> list[FileRequirement]:
        self._raise_if_cancelled()
        return list(self._client.requirements(specs))

    def enqueue(self, answer: Iterable[FileRequirement], *, only_new: bool,
                checked: int | None, take_over: bool = False) -> int:
        """Queue uploads for a requirements answer: ``unknown`` first, then ``uploading``.

        ``checked`` is how many hashed bytes the answer covers (None: the whole plan);
        the bar learns it together with the new upload work, before any upload starts,
        so it never moves back.
        """
        work: list[UploadItem] = []
        fresh_files = fresh_bytes = 0
        for req in sorted(answer, key=lambda r: 0 if r.status == "unknown" else 1):
            key = (req.sha, req.size)
            if not self._ledger.queue(key, only_new=only_new):
                continue
            sources = self._contents.sources_for(key)
            if not sources:
                log.warning("requirements named content %s/%d this plan does not have", *key)
                continue
            if self._ledger.count_work(key):
                fresh_files += 1
                fresh_bytes += req.size
            work.append(UploadItem(req.sha, req.size, sources, req.path,
                                   can_defer=not take_over))
        self._tracker.answered(checked, fresh_files, fresh_bytes)
        if work:
            uploads = self._uploads()
            for item in work:
                uploads.put(item)
        return len(work)

    def ensure_all_stored(self, specs: Callable[[], list[FileSpec]],
                          answer: list[FileRequirement] | None) -> None:
        """Requirements until they come back empty (bounded): over the whole list first
        (unless ``answer`` is its answer already), then over the files the last answer
        named, once they were sent: the rest were stored (asking about 100,000 files
        again for the one just sent costs a second of the server's time). Should the
        server lose one of those meanwhile, the checkout says so and this runs again.

        ``specs`` gives the list as it is now: a file hashed again after a 417 has a new
        checksum by the next round."""
        rounds = waits = 0
        tuning = self._tuning
        named: set[str] | None = None  # paths the last answer named (None: all)
        while True:
            if answer is None:
                self._tracker.set_phase(Phase.CHECKING)
                now = specs()
                answer = self.ask(now if named is None else [s for s in now if s.path in named])
            if not answer:
                self._tracker.answered(None)
                return
            if all(r.status == "uploading" for r in answer):
                waits += 1  # someone else is sending these: waiting is not failing
                if waits > tuning.max_wait_rounds:
                    break
            else:
                rounds += 1
                if rounds > tuning.max_rounds:
                    break
            self._tracker.set_phase(Phase.UPLOADING)
            self.enqueue(answer, only_new=False, checked=None,
                         take_over=waits > tuning.max_wait_rounds // 2)
            self._uploads().wait()
            named, answer = {r.path for r in answer}, None
        self._never_stored(answer, rounds, waits)

    def _never_stored(self, answer: list[FileRequirement], rounds: int, waits: int) -> None:
        names = sorted({r.path for r in answer})
        shown = ", ".join(quoted(n) for n in names[:10]) + (
            f" and {len(names) - 10} more" if len(names) > 10 else "")
        url = self._options.server_url
        raise FilesNeverStored(
            f"The server at {url} still lacks {len(names)} file(s) after {rounds} upload "
            f"rounds and {waits} waits for other uploads: {shown}. Check the Manager's log "
            "and disk space.", url=url, paths=tuple(names))
