"""The checksum cache knows a file rewritten at the same size with its mtime put back
(issue 13, item 8): the key holds the ctime and the inode, and a cache of the older
schema (no ctime) is rebuilt, not trusted."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from shaman_addon.submit.checksums import SCHEMA_VERSION, ChecksumCache, FileStat


def _rewrite_keeping_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_same_size_and_restored_mtime_is_a_miss(tmp_path: Path) -> None:
    db = tmp_path / "checksums.sqlite"
    tex = tmp_path / "tex.png"
    tex.write_bytes(b"AAAA")
    before = FileStat.of(tex)
    with ChecksumCache(db) as cache:
        cache.put(before, "aa" * 32)
    with ChecksumCache(db) as cache:  # unchanged: still free
        assert cache.lookup(FileStat.of(tex)) == "aa" * 32
        assert cache.lookup_many([FileStat.of(tex)]) == ["aa" * 32]
    _rewrite_keeping_mtime(tex, b"BBBB")
    after = FileStat.of(tex)
    assert (after.size, after.mtime_ns) == (before.size, before.mtime_ns)
    with ChecksumCache(db) as cache:
        assert cache.lookup(after) is None
        assert cache.lookup_many([after]) == [None]


def test_a_file_replaced_by_another_is_a_miss(tmp_path: Path) -> None:
    """Another file moved into place (a new inode) with the same size and times."""
    tex, other = tmp_path / "tex.png", tmp_path / "other.png"
    tex.write_bytes(b"AAAA")
    other.write_bytes(b"BBBB")
    st = tex.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    with ChecksumCache(tmp_path / "c.sqlite") as cache:
        cache.put(FileStat.of(tex), "aa" * 32)
        os.replace(other, tex)
        assert cache.lookup(FileStat.of(tex)) is None


def test_a_cache_of_the_old_schema_is_rebuilt_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "checksums.sqlite"
    tex = tmp_path / "tex.png"
    tex.write_bytes(b"AAAA")
    st = tex.stat()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE checksums (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                 "mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, used_at REAL NOT NULL)")
    conn.execute("INSERT INTO checksums VALUES (?, ?, ?, ?, 0)",
                 (str(tex), st.st_size, st.st_mtime_ns, "aa" * 32))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with ChecksumCache(db) as cache:
        assert cache.status == "ok"
        assert cache.lookup(FileStat.of(tex)) is None  # an old row is not trusted
        cache.put(FileStat.of(tex), "bb" * 32)
    with ChecksumCache(db) as cache:
        assert cache.lookup(FileStat.of(tex)) == "bb" * 32
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    conn.close()
    assert not db.with_name(db.name + ".corrupt").exists()


def test_many_files_of_a_folder_are_found_as_one_by_one_lookups_find_them(
        tmp_path: Path) -> None:
    """A folder with many files asked is read as one range of the index: it must give
    exactly what a lookup by name gives, next to folders whose names extend its name
    ('tex' and 'tex2', 'tex-a'), its subfolders, and a folder holding far more cached
    files than are asked (read by name)."""
    import random

    rng = random.Random(3)
    stats: list[FileStat] = []
    for folder, count in (("tex", 40), ("tex2", 30), ("tex-a", 20), ("tex/sub", 25),
                          ("big", 400), ("few", 3)):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            f = tmp_path / folder / f"f{i:03d}.png"
            f.write_bytes(b"x" * i)
            stats.append(FileStat.of(f))
    cached = {s.path: f"{rng.getrandbits(256):064x}" for s in stats if rng.random() < 0.8}
    with ChecksumCache(tmp_path / "c.sqlite") as cache:
        for s in stats:
            if s.path in cached:
                cache.put(s, cached[s.path])
        cache.flush()
        stale = FileStat(stats[5].path, stats[5].size + 1, stats[5].mtime_ns)
        asked = [s for s in stats if "/big/" not in s.path or s.path.endswith("7.png")]
        twice = FileStat(stats[7].path, stats[7].size, stats[7].mtime_ns, stats[7].ctime_ns,
                         stats[7].inode)  # the same file twice in one batch
        asked += [stale, twice]
        rng.shuffle(asked)
        expected = [None if s is stale else cached.get(s.path) for s in asked]
        assert cache.lookup_many(asked) == expected
        for first, then in ((stale, stats[5]), (stats[5], stale)):  # one path, two states
            assert cache.lookup_many([first, then]) == [
                None if s is stale else cached.get(s.path) for s in (first, then)]
        assert [cache.lookup(s) for s in asked] == expected
