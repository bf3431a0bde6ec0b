"""The hashing stage: a few threads computing SHA-256 of the files the cache did not know.

Files arrive one at a time while the collector still reads libraries. A finished
checksum joins a list the main thread takes (``take``) whenever it wakes, and at the
latest at its next poll (``gathering.POLL_S``): it is never held behind the next file's
hashing, however slow that is. The main thread is rung (``HashesReady``) once the list
holds ``RING_AT`` checksums, or when there is nothing left to hash: one wake-up per batch,
not per file, since each wake-up is a GIL hand-off and a submission hashes thousands of
small files. Plain threads and a queue rather than futures: waiting on thousands of
futures costs time per future.
"""

from __future__ import annotations

import logging
import os
import queue
import threading

from ..errors import LocalFileChanged
from ..progress import ProgressTracker
from . import checksums
from .checksums import FileStat
from .contents import Entry
from .messages import HashesReady, HashResult, Inbox, StageFailed

log = logging.getLogger(__name__)

RING_AT = 32
"""Checksums waiting before the main thread is woken for them (see the docstring)."""


def hash_workers(jobs: int) -> int:
    """One core is left to the upload threads (and to Blender's interface, or a local
    server): on 2 cores a second hashing thread slowed a cold submission down."""
    return max(1, min(jobs, (os.cpu_count() or 2) - 1, 8))


def hash_entry(entry: Entry, tracker: ProgressTracker, stop: threading.Event) -> HashResult:
    """Hash one file; if it changes while being read, once more, then give up."""
    source, label = entry.file.source, entry.file.checkout_path
    before = entry.stat
    for attempt in range(2):
        try:
            sha, nbytes = checksums.sha256_file(
                source,
                on_bytes=lambda n: tracker.hashed_bytes(n, label),
                cancel=stop,
                size_hint=before.size,
            )
        except OSError as exc:
            raise LocalFileChanged(
                f"{source} cannot be read to compute its checksum "
                f"({exc.strerror or exc}); it may have been deleted or moved since it was "
                "found as a dependency.", path=str(source)) from exc
        after = FileStat.of(source)
        if after == before and nbytes == before.size:
            return HashResult(entry, before, sha)
        tracker.hashed_bytes(-nbytes)
        before = after
        log.info("%s changed while it was hashed (attempt %d)", source, attempt + 1)
    raise LocalFileChanged(
        f"{source} keeps changing while it is read; save it, wait for whatever is "
        "writing it to finish, and submit again.",
        path=str(source),
    )


class HashStage:
    """Threads that hash the entries given to ``want`` and report to ``inbox``."""

    def __init__(self, inbox: Inbox, tracker: ProgressTracker, *, workers: int) -> None:
        self._inbox = inbox
        self._tracker = tracker
        self._workers = workers
        self._todo: queue.SimpleQueue[Entry | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._done: list[HashResult] = []
        self._rung = False  # a HashesReady is on its way and ``take`` not called since
        self.stop_event = threading.Event()

    def want(self, entry: Entry) -> None:
        """Hash ``entry`` (threads start with the first file that needs them)."""
        if not self._threads:
            for n in range(self._workers):
                thread = threading.Thread(target=self._work, name=f"shaman-hash-{n}",
                                          daemon=True)
                thread.start()
                self._threads.append(thread)
        self._todo.put(entry)

    def stop(self) -> None:
        """Stop hashing at the next chunk (cancel, or a failure elsewhere)."""
        self.stop_event.set()

    def close(self) -> None:
        """Let the threads leave once the work queued so far is done (or stopped)."""
        for _ in self._threads:
            self._todo.put(None)
        for thread in self._threads:
            thread.join()

    def take(self) -> list[HashResult]:
        """Every checksum finished since the last call (main thread)."""
        with self._lock:
            done, self._done = self._done, []
            self._rung = False
        return done

    def _deliver(self, result: HashResult) -> None:
        with self._lock:
            self._done.append(result)
            ring = not self._rung and (len(self._done) >= RING_AT or self._todo.empty())
            self._rung = self._rung or ring
        if ring:
            self._inbox.put(HashesReady())

    def _work(self) -> None:
        while not self.stop_event.is_set():
            entry = self._todo.get()
            if entry is None:
                return
            try:
                self._deliver(hash_entry(entry, self._tracker, self.stop_event))
            except BaseException as exc:  # handed to the main thread, which raises it
                self._inbox.put(StageFailed("hashing", exc))
                return
