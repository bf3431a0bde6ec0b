"""What one submission knows about its files and contents, shared by its threads.

``Contents`` holds every file by its checkout path with the stat it was hashed at and
its checksum, and which files hold each content (Shaman answers per content, not per
file). ``UploadLedger`` records what happened to each content this run: asked about,
queued, stored, sent by us; it decides what the progress bar counts as upload work
(once per content) and when asking about the whole list again would only repeat what
is known.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..collect.plan import PlanFile
from ..shaman.client import FileSpec
from .checksums import FileStat

_K = TypeVar("_K")
Key = tuple[str, int]
"""A content as Shaman names it: (SHA-256, size)."""


@dataclass(slots=True, eq=False)
class Entry:
    """One file of the submission. Replaced (not changed) when the collector hands in
    another file for the same checkout path, so work begun for the old one is known to
    be stale by identity."""

    file: PlanFile
    stat: FileStat
    spec: FileSpec | None = None


class Contents:
    """Every file by checkout path, and the files holding each content (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        # One Entry, or a list when several share the key (rare): a list per file would
        # cost 60 bytes each, 12 MB for a 100,000-file shot.
        self._holders: dict[Key, Entry | list[Entry]] = {}
        self._by_source: dict[str, Entry | list[Entry]] = {}  # uploads look files up by it
        # The last ``specs`` answer and the list it was for; dropped by any change.
        self._last_specs: tuple[Sequence[PlanFile], list[FileSpec]] | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def add_found(self, files: Sequence[PlanFile], stats: Sequence[FileStat],
                  shas: Sequence[str | None]) -> tuple[list[FileSpec], list[Entry]]:
        """Take files in (one already there for a checkout path is replaced), each with
        its cached checksum (or None) recorded as ``set_checksum`` would: the specs of
        those with one, and the entries to hash. One lock for the batch: 100,000 files
        come in a few dozen batches."""
        specs: list[FileSpec] = []
        to_hash: list[Entry] = []
        with self._lock:
            for file, stat, sha in zip(files, stats, shas, strict=True):
                entry = self._add(file, stat)
                if sha is None:
                    to_hash.append(entry)
                else:
                    specs.append(self._set(entry, sha, stat.size, stat))
        return specs, to_hash

    def _add(self, file: PlanFile, stat: FileStat) -> Entry:
        self._last_specs = None
        entry = Entry(file, stat)
        old = self._entries.get(file.checkout_path)
        if old is not None:
            self._forget(old)
        self._entries[file.checkout_path] = entry
        _put(self._by_source, file.source_path, entry)
        return entry

    def is_current(self, entry: Entry) -> bool:
        with self._lock:
            return self._entries.get(entry.file.checkout_path) is entry

    def not_held(self, files: Iterable[PlanFile]) -> list[PlanFile]:
        """Those of ``files`` whose very object is not the one held (under one lock)."""
        with self._lock:
            get = self._entries.get
            return [f for f in files
                    if (held := get(f.checkout_path)) is None or held.file is not f]

    def set_checksum(self, entry: Entry, sha: str, size: int, stat: FileStat) -> FileSpec:
        """Record ``entry``'s checksum of ``size`` bytes, hashed when the file was as
        ``stat`` says, keeping the content index in step."""
        with self._lock:
            return self._set(entry, sha, size, stat)

    def _set(self, entry: Entry, sha: str, size: int, stat: FileStat) -> FileSpec:
        self._last_specs = None
        spec = FileSpec(sha, size, entry.file.checkout_path)
        self._unhold(entry)
        entry.stat = stat
        entry.spec = spec
        _put(self._holders, (sha, size), entry)
        return spec

    def _forget(self, entry: Entry) -> None:
        self._last_specs = None
        self._unhold(entry)
        _drop(self._by_source, entry.file.source_path, entry)

    def _unhold(self, entry: Entry) -> None:
        if entry.spec is None:
            return
        _drop(self._holders, (entry.spec.sha, entry.spec.size), entry)

    def retain(self, paths: set[str]) -> None:
        """Forget files that are not in the finished plan (they vanished meanwhile)."""
        with self._lock:
            for path in [p for p in self._entries if p not in paths]:
                self._forget(self._entries.pop(path))

    def specs(self, files: Sequence[PlanFile]) -> list[FileSpec]:
        """The checksums of ``files`` (a finished plan's list, not changed after), in that
        order; every one must be known. The same list object again while nothing was
        taken in since: a submission asks for it three or four times (requirements, a
        round after uploads, the checkout, the result), 0.1 s each at 100,000 files.
        Callers read it and do not change it."""
        with self._lock:
            last = self._last_specs
            if last is not None and last[0] is files:
                return last[1]
            got = [self._entries[f.checkout_path].spec for f in files]
            assert all(spec is not None for spec in got), "a checksum is missing"
            out = [spec for spec in got if spec is not None]
            self._last_specs = (files, out)
        return out

    def sources_for(self, key: Key) -> list[str]:
        """The local files holding content ``key`` (each once)."""
        with self._lock:
            sources = [entry.file.source_path for entry in _all(self._holders, key)]
        return list(dict.fromkeys(sources))

    def entries_of(self, source: str) -> list[Entry]:
        """Every current entry read from ``source`` (one file can land at several paths)."""
        with self._lock:
            return _all(self._by_source, source)

    def held_keys(self) -> set[Key]:
        """The contents some current file holds."""
        with self._lock:
            return set(self._holders)

    def original_of(self, source: str) -> str:
        """The artist's file behind ``source`` (itself unless it is a rewritten copy)."""
        with self._lock:
            entries = _all(self._by_source, source)
            return entries[0].file.original_path if entries else source


def _put(index: dict[_K, Entry | list[Entry]], key: _K, entry: Entry) -> None:
    held = index.get(key)
    if held is None:
        index[key] = entry
    elif isinstance(held, list):
        held.append(entry)
    else:
        index[key] = [held, entry]


def _drop(index: dict[_K, Entry | list[Entry]], key: _K, entry: Entry) -> None:
    held = index.get(key)
    if held is entry:
        del index[key]
    elif isinstance(held, list) and entry in held:
        held.remove(entry)
        if not held:
            del index[key]


def _all(index: dict[_K, Entry | list[Entry]], key: _K) -> list[Entry]:
    held = index.get(key)
    if held is None:
        return []
    return list(held) if isinstance(held, list) else [held]


class UploadLedger:
    """What happened to each content this run (thread-safe).

    The sets hold a content's SHA-256 alone (its size follows from it): a set of
    (sha, size) pairs costs a tuple per content and set, 22 MB for a 100,000-file shot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked: set[str] = set()  # named in a requirements call this run
        self._queued: set[str] = set()  # given to the upload threads
        self._counted: set[str] = set()  # counted as upload work on the progress bar
        self._finished: set[str] = set()  # on the server now
        self._sent: dict[Key, str] = {}  # stored by our own upload: key -> a name

    def asked(self, keys: Iterable[Key]) -> None:
        with self._lock:
            self._asked.update(sha for sha, _size in keys)

    def queue(self, key: Key, *, only_new: bool) -> bool:
        """Mark ``key`` as queued; False (nothing marked) when ``only_new`` and it was."""
        with self._lock:
            if only_new and key[0] in self._queued:
                return False
            self._queued.add(key[0])
            return True

    def count_work(self, key: Key) -> bool:
        """True the first time a content needs sending (again only after it was done):
        the bar's upload total counts it once."""
        sha = key[0]
        with self._lock:
            fresh = sha not in self._counted or sha in self._finished
            self._counted.add(sha)
            self._finished.discard(sha)
        return fresh

    def finish(self, key: Key, name: str, *, sent_by_us: bool) -> None:
        with self._lock:
            self._finished.add(key[0])
            if sent_by_us:
                self._sent[key] = name

    def all_confirmed(self, held: set[Key]) -> bool:
        """Every held content was in a requirements batch, and every one the server asked
        for is stored (our upload answered 200, or its status said so): asking about
        the whole list once more would only repeat that. The checkout still checks, and
        a blob lost in between is sent again."""
        with self._lock:
            return ({sha for sha, _size in held} <= self._asked
                    and self._queued <= self._finished)

    def sent(self) -> dict[Key, str]:
        """The contents our own uploads stored, with a checkout path that holds each."""
        with self._lock:
            return dict(self._sent)
