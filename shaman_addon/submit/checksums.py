"""Streamed SHA-256 and the persistent checksum cache.

Shaman addresses content by SHA-256 and size, so every file must be hashed before the
server can be asked what it lacks. Hashing 500 MB takes seconds; the cache makes an
unchanged file free on the next submission. It is keyed by absolute path, size,
modification time, status-change time (ctime) and inode: a file saved again gets a new
mtime and misses, and so does one rewritten at the same size whose mtime was put back
(the ctime moves with any write and cannot be set back; a file replaced by another
has another inode). Schema 1 (no ctime) is dropped and rebuilt at the first open: its
rows cannot tell such a change, so each file is hashed once more, then free again.

The cache is one sqlite file shared by every Blender and command line of the user, so it
must never make a submission wait or fail:
- a corrupt file is moved aside and rebuilt;
- a file locked by another process (another Blender in the middle of writing) makes this
  run go without the cache: no busy wait (timeout 0), and nothing is deleted;
- writes are batched in one transaction per flush, so 30,000 new entries cost one commit.
The default rollback journal is used (not WAL): no ``-wal``/``-shm`` files are left next
to the cache, and a writer holding the lock shows up at once as ``database is locked``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath

from ..errors import Cancelled, LocalFileChanged

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
SCHEMA_VERSION = 2
_LOOKUP_CHUNK = 500  # paths per query (sqlite allows at least 999 parameters)
_RANGE_MIN = 16  # files asked in one folder for its range of the index to be read
FLUSH_EVERY = 5000
"""New checksums written in one transaction once this many wait: bounded memory, and
few enough writes not to cost time (one transaction per 5,000 files)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checksums (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    used_at REAL NOT NULL
)
"""


def sha256_file(
    path: Path,
    *,
    on_bytes: Callable[[int], None] | None = None,
    cancel: threading.Event | None = None,
    chunk_size: int = CHUNK_SIZE,
    size_hint: int | None = None,
) -> tuple[str, int]:
    """Return ``(lowercase hex SHA-256, bytes read)`` of ``path``, read in 1 MiB chunks.

    Memory stays constant whatever the file size. ``on_bytes`` gets each chunk's length
    (for a smooth progress bar on a 2 GB texture); ``cancel`` is checked per chunk.
    The byte count is returned because it, not an earlier ``stat``, matches the digest.
    """
    digest = hashlib.sha256()
    total = 0
    with open(path, "rb", buffering=0) as fh:
        # A buffer the size of the file (one byte more, so EOF shows in the same pass), at
        # most a chunk: a fresh 1 MiB buffer per small file cost more in page faults and
        # zeroing than hashing the file did.
        # ``size_hint`` (a size the caller just took) saves an fstat; a wrong one only
        # changes the buffer's size, never what is read.
        size = size_hint if size_hint is not None else os.fstat(fh.fileno()).st_size
        buf = bytearray(max(1, min(chunk_size, size + 1)))
        view = memoryview(buf)
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"Cancelled while hashing {path}.")
            n = fh.readinto(buf)
            if not n:
                break
            digest.update(view[:n])
            total += n
            if on_bytes is not None:
                on_bytes(n)
            if n < len(buf):
                # A short read of a regular file is its end: asking again only to hear
                # "0 bytes" is one more system call per file. Bytes appended meanwhile
                # change the size, which the callers compare after hashing.
                break
    return digest.hexdigest(), total


@dataclass(slots=True)
class FileStat:
    """What the cache key is made of, taken once per file. Not frozen, for speed (as
    ``PlanFile``)."""

    path: str
    size: int
    mtime_ns: int
    ctime_ns: int = 0
    inode: int = 0

    @property
    def ident(self) -> tuple[int, int, int, int]:
        """What must match for a cached checksum to count (besides the path)."""
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode)

    @classmethod
    def from_stat(cls, path: str, st: os.stat_result) -> FileStat:
        """From a ``stat`` already taken of the absolute ``path``."""
        return cls(path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    @classmethod
    def of(cls, path: Path | str) -> FileStat:
        try:
            st = os.stat(path)
        except FileNotFoundError as exc:
            raise LocalFileChanged(
                f"{path} is gone: it was deleted or moved after it was found as a "
                "dependency. Submit again once it is back (or its user no longer needs it).",
                path=str(path),
            ) from exc
        if isinstance(path, str) and os.path.isabs(path):
            key = path  # the plan's own text: one string per file, shared
        elif isinstance(path, PurePath) and path.is_absolute():
            key = str(path)  # the same text as .absolute(), without a new Path per call
        else:
            key = str(Path(path).absolute())
        return cls.from_stat(key, st)


def _is_locked(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class ChecksumCache:
    """The sqlite checksum cache; every method is safe to call from any thread.

    ``ChecksumCache(None)`` is a cache that remembers nothing (no cache folder given).
    ``status`` says in plain words whether the file is used this run: ``"ok"`` and
    ``"rebuilt"`` (it is), ``"off"``, ``"locked"``, ``"unusable"`` (it is not).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.status = "off"
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[FileStat, str]] = {}
        self._conn: sqlite3.Connection | None = None
        if path is not None:
            self._open(path)

    def _connect(self, path: Path) -> sqlite3.Connection:
        # timeout=0: a lock held elsewhere fails at once instead of waiting.
        conn = sqlite3.connect(str(path), timeout=0, check_same_thread=False)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"unknown cache schema version {version}")
            if version == 1:  # keyed without ctime/inode: its rows cannot be trusted
                conn.execute("DROP TABLE IF EXISTS checksums")
            conn.execute(_SCHEMA)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.commit()
            # Reading the table proves the file is a sound database, not just a header.
            conn.execute("SELECT count(*) FROM checksums").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = self._connect(path)
            self.status = "ok"
            return
        except sqlite3.Error as exc:
            if _is_locked(exc):
                log.warning(
                    "checksum cache %s is locked by another process; hashing without it "
                    "this time", path,
                )
                self.status = "locked"
                return
            log.warning("checksum cache %s is unreadable (%s); rebuilding it", path, exc)
        except OSError as exc:
            log.warning("checksum cache %s cannot be opened (%s); going without", path, exc)
            self.status = "unusable"
            return
        self._rebuild(path)

    def _rebuild(self, path: Path) -> None:
        """Move the damaged file aside (kept for a person to look at) and start afresh."""
        aside = path.with_name(path.name + ".corrupt")
        try:
            os.replace(path, aside)
            for suffix in ("-journal", "-wal", "-shm"):
                extra = path.with_name(path.name + suffix)
                if extra.exists():
                    os.replace(extra, aside.with_name(aside.name + suffix))
            self._conn = self._connect(path)
            self.status = "rebuilt"
        except (OSError, sqlite3.Error) as exc:
            log.warning("could not rebuild checksum cache %s (%s); going without", path, exc)
            self._conn = None
            self.status = "unusable"

    def lookup(self, stat: FileStat) -> str | None:
        """The cached SHA-256 for exactly this path and ``stat.ident``, else None."""
        with self._lock:
            pending = self._pending.get(stat.path)
            if pending is not None and pending[0].ident == stat.ident:
                return pending[1]
            if self._conn is None:
                return None
            try:
                row = self._conn.execute(
                    "SELECT sha256 FROM checksums WHERE path = ? AND size = ? AND mtime_ns = ? "
                    "AND ctime_ns = ? AND inode = ?", (stat.path, *stat.ident),
                ).fetchone()
            except sqlite3.Error as exc:
                log.warning("checksum cache read failed (%s); going without it", exc)
                self._drop_connection()
                row = None
        return None if row is None else str(row[0])

    def lookup_many(self, stats: list[FileStat]) -> list[str | None]:
        """``lookup`` for many files in one query per folder or few hundred: each query
        lets go of the GIL, and the collector asks for thousands of files."""
        out: list[str | None] = [None] * len(stats)
        with self._lock:
            ask: dict[str, int] = {}  # path -> where its answer goes
            again: list[int] = []  # a path asked twice in one batch
            pending = self._pending
            for i, stat in enumerate(stats):
                held = pending.get(stat.path) if pending else None
                if held is not None and held[0].ident == stat.ident:
                    out[i] = held[1]
                elif stat.path in ask:
                    again.append(i)
                else:
                    ask[stat.path] = i
            if self._conn is not None and ask:
                try:
                    for path, size, mtime_ns, ctime_ns, inode, sha in self._rows(list(ask)):
                        i = ask.get(path, -1)
                        if i >= 0 and stats[i].ident == (size, mtime_ns, ctime_ns, inode):
                            out[i] = str(sha)
                except sqlite3.Error as exc:
                    log.warning("checksum cache read failed (%s); going without it", exc)
                    self._drop_connection()
        for i in again:  # rare: the same path twice in one batch
            out[i] = self.lookup(stats[i])
        return out

    def _rows(self, paths: list[str]) -> Iterator[tuple[str, int, int, int, int, str]]:
        """The cached rows of ``paths`` (and maybe of others: callers look theirs up).

        Files come in folders: the rows of a folder with many of them are read in one
        range of the index (a third of the cost of as many lookups by name), unless
        the folder holds far more cached files than are asked (then they are asked by
        name)."""
        assert self._conn is not None
        by_folder: dict[str, list[str]] = {}
        for path in paths:
            by_folder.setdefault(path[:path.rfind("/")], []).append(path)
        by_name: list[str] = []
        select = "SELECT path, size, mtime_ns, ctime_ns, inode, sha256 FROM checksums WHERE "
        for folder, names in by_folder.items():
            if len(names) < _RANGE_MIN or not folder:
                by_name += names
                continue
            limit = 4 * len(names) + 64
            found = self._conn.execute(select + "path > ? AND path < ? LIMIT ?",
                                       (folder + "/", folder + "0", limit)).fetchall()
            if len(found) >= limit:
                by_name += names
                continue
            yield from found
        for start in range(0, len(by_name), _LOOKUP_CHUNK):
            chunk = by_name[start:start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            yield from self._conn.execute(f"{select}path IN ({marks})", chunk).fetchall()

    def put(self, stat: FileStat, sha256: str) -> None:
        """Remember a checksum; written to disk at the next ``flush()``, or now once
        ``FLUSH_EVERY`` wait (a 100,000-file shot would hold them all to the end)."""
        with self._lock:
            self._pending[stat.path] = (stat, sha256)
            due = len(self._pending) >= FLUSH_EVERY
        if due:
            self.flush()

    def forget(self, paths: Iterable[str]) -> None:
        """Drop entries that proved wrong (a 417 from the server)."""
        with self._lock:
            paths = list(paths)
            for p in paths:
                self._pending.pop(p, None)
            if self._conn is None:
                return
            try:
                with self._conn:
                    self._conn.executemany(
                        "DELETE FROM checksums WHERE path = ?", [(p,) for p in paths]
                    )
            except sqlite3.Error as exc:
                log.warning("could not drop stale checksum cache entries (%s)", exc)

    def flush(self) -> int:
        """Write pending entries in ONE transaction; returns how many were written.

        A lock held by another process means they are not written this time (never a
        wait); the file itself is left alone.
        """
        with self._lock:
            if not self._pending or self._conn is None:
                return 0
            now = time.time()
            rows = [(p, *st.ident, h, now) for p, (st, h) in self._pending.items()]
            try:
                with self._conn:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO checksums (path, size, mtime_ns, ctime_ns, "
                        "inode, sha256, used_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        rows,
                    )
            except sqlite3.Error as exc:
                if _is_locked(exc):
                    log.warning(
                        "checksum cache %s is locked by another process; %d new "
                        "checksums not saved this time", self.path, len(rows),
                    )
                else:
                    log.warning("checksum cache write failed (%s)", exc)
                return 0
            self._pending.clear()
            return len(rows)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        """Flush what is pending and close the file."""
        self.flush()
        with self._lock:
            self._drop_connection()

    def __enter__(self) -> ChecksumCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
