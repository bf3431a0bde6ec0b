"""Streamed SHA-256 and the sqlite checksum cache, on real files and a real second
sqlite connection standing in for another Blender holding the lock."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from shaman_addon.errors import Cancelled
from shaman_addon.submit.checksums import FLUSH_EVERY, ChecksumCache, FileStat, sha256_file


def test_sha256_matches_hashlib_and_reports_every_chunk(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 123)
    path = tmp_path / "tex.png"
    path.write_bytes(data)
    chunks: list[int] = []
    sha, nbytes = sha256_file(path, on_bytes=chunks.append)
    assert sha == hashlib.sha256(data).hexdigest()
    assert sha == sha.lower() and len(sha) == 64
    assert nbytes == len(data)
    assert chunks == [1 << 20, 1 << 20, 1 << 20, 123]


def test_sha256_of_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_file(path) == (hashlib.sha256(b"").hexdigest(), 0)


def test_sha256_stops_when_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * (4 << 20))
    cancel = threading.Event()
    seen: list[int] = []

    def on_bytes(n: int) -> None:
        seen.append(n)
        cancel.set()

    with pytest.raises(Cancelled):
        sha256_file(path, on_bytes=on_bytes, cancel=cancel)
    assert len(seen) == 1


def _stat(tmp_path: Path, name: str, content: bytes) -> FileStat:
    path = tmp_path / name
    path.write_bytes(content)
    return FileStat.of(path)


def test_cache_round_trip_and_key_parts(tmp_path: Path) -> None:
    db = tmp_path / "cache" / "checksums.sqlite"
    st = _stat(tmp_path, "a.png", b"hello")
    with ChecksumCache(db) as cache:
        assert cache.status == "ok"
        assert cache.lookup(st) is None
        cache.put(st, "ab" * 32)
        assert cache.lookup(st) == "ab" * 32  # pending entries are visible at once
    with ChecksumCache(db) as cache:
        assert cache.lookup(st) == "ab" * 32
        # Same path, another mtime or size: a miss.
        assert cache.lookup(FileStat(st.path, st.size, st.mtime_ns + 1)) is None
        assert cache.lookup(FileStat(st.path, st.size + 1, st.mtime_ns)) is None


def test_cache_writes_are_few_transactions_and_bounded(tmp_path: Path) -> None:
    """One transaction per FLUSH_EVERY new checksums, not one per file, and never more
    than that many held in memory (a 100,000-file shot held them all to the end)."""
    db = tmp_path / "checksums.sqlite"
    cache = ChecksumCache(db)
    assert cache._conn is not None
    statements: list[str] = []
    cache._conn.set_trace_callback(statements.append)
    held = 0
    for i in range(30_000 + 7):
        cache.put(FileStat(f"/p/{i}", i, i), f"{i:064x}")
        held = max(held, len(cache._pending))
    assert held < FLUSH_EVERY
    assert cache.flush() == 7  # the rest were written on the way
    commits = [s for s in statements if s.strip().upper().startswith("COMMIT")]
    assert len(commits) == 30_000 // FLUSH_EVERY + 1
    cache.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM checksums").fetchone()[0] == 30_007


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "checksums.sqlite"
    db.write_bytes(b"this is not sqlite at all" * 100)
    st = _stat(tmp_path, "a.png", b"hello")
    with ChecksumCache(db) as cache:
        assert cache.status == "rebuilt"
        cache.put(st, "cd" * 32)
    with ChecksumCache(db) as cache:
        assert cache.status == "ok"
        assert cache.lookup(st) == "cd" * 32
    assert (tmp_path / "checksums.sqlite.corrupt").exists()


def test_truncated_cache_is_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "checksums.sqlite"
    with ChecksumCache(db) as cache:
        for i in range(2000):
            cache.put(FileStat(f"/p/{i}", i, i), f"{i:064x}")
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    with ChecksumCache(db) as cache:
        assert cache.status in ("ok", "rebuilt")  # in use: sound, or moved aside and new
        cache.lookup(FileStat("/p/1", 1, 1))


def _hold_write_lock(db: Path) -> sqlite3.Connection:
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    other.execute("INSERT INTO checksums (path, size, mtime_ns, ctime_ns, inode, sha256, "
                  "used_at) VALUES ('/other', 1, 1, 1, 1, 'ff', 0)")
    return other


def test_locked_cache_is_skipped_without_waiting_and_not_wiped(tmp_path: Path) -> None:
    db = tmp_path / "checksums.sqlite"
    st = _stat(tmp_path, "a.png", b"hello")
    with ChecksumCache(db) as cache:
        cache.put(st, "ee" * 32)
    other = _hold_write_lock(db)
    try:
        # timeout=0 inside: this returns at once (a wait would be 5 s by sqlite default).
        cache = ChecksumCache(db)
        assert cache.status == "locked"
        assert cache.lookup(st) is None
        cache.put(st, "11" * 32)
        assert cache.flush() == 0
        cache.close()
    finally:
        other.rollback()
        other.close()
    with ChecksumCache(db) as cache:
        assert cache.status == "ok"
        assert cache.lookup(st) == "ee" * 32  # nothing was wiped


def test_lock_taken_after_open_loses_the_writes_only(tmp_path: Path) -> None:
    db = tmp_path / "checksums.sqlite"
    st = _stat(tmp_path, "a.png", b"hello")
    cache = ChecksumCache(db)
    assert cache.status == "ok"
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a writer in progress elsewhere
    try:
        cache.put(st, "aa" * 32)
        assert cache.flush() == 0  # not written, no wait, no error
    finally:
        other.rollback()
        other.close()
    assert cache.flush() == 1  # pending entries survive to the next flush
    cache.close()
    with ChecksumCache(db) as again:
        assert again.lookup(st) == "aa" * 32


def test_forget_drops_an_entry(tmp_path: Path) -> None:
    db = tmp_path / "checksums.sqlite"
    st = _stat(tmp_path, "a.png", b"hello")
    with ChecksumCache(db) as cache:
        cache.put(st, "aa" * 32)
    with ChecksumCache(db) as cache:
        cache.forget([st.path])
    with ChecksumCache(db) as cache:
        assert cache.lookup(st) is None


def test_no_cache_folder_means_no_cache(tmp_path: Path) -> None:
    st = _stat(tmp_path, "a.png", b"hello")
    cache = ChecksumCache(None)
    assert cache.status == "off"
    assert cache.lookup(st) is None
    cache.close()
