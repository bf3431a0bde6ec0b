"""Rewritten copies of .blend files: new paths patched into a copy, byte-deterministic.

The byte range of every path field is known from tracing (``trace_blend.Slot``), so a copy
is the original (decompressed as a stream), with those ranges overwritten (the new path,
then zero bytes to the end of the field), compressed again like the original (zstd or
gzip) at a fixed level, ``SEGMENT`` bytes at a time: memory stays bounded whatever the
.blend's size. No timestamps or names go into the output, so the same input
and the same changes always give the same bytes (and the same checksum on the server).
A new path that does not fit its fixed-size field is an error, never truncated.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import BlendFileError, PathTooLong
from . import blend_limits, paths
from .expand import resolve
from .trace import CACHE_GLOB, DIRECTORY, LISTED, BlendTrace, Ref, Slot

log = logging.getLogger(__name__)

ZSTD_LEVEL = 3
REWRITE_CACHE_KEEP = 64  # rewritten copies kept in cache_dir/rewritten (last used first)
# An entry used this recently is never pruned: another submission (a second Blender, the
# command line) may be hashing or uploading it right now, straight from the cache.
REWRITE_CACHE_MIN_AGE_S = 12 * 3600
GZIP_LEVEL = 6
SEGMENT = 16 << 20
"""Bytes patched and compressed at a time (a zstd frame each): a copy costs a few times
this much memory, whatever the .blend's size. A file up to this size gives the same bytes
as compressing it whole did."""


@dataclass(frozen=True)
class Patch:
    slot: Slot
    old: str
    new: str
    referrer: str


def patches_for(
    blend_path: Path,
    trace: BlendTrace,
    blend_checkout_path: str,
    *,
    blend_dir: Path | str,
    place: Callable[[str], str],
    skip: Callable[[str], bool] = lambda _p: False,
) -> list[Patch]:
    """The stored paths of one .blend that must change so they work in the checkout.

    A path changes when it does not already read as the ``//``-relative path from the
    .blend's checkout location to its target's (absolute paths, files outside the project,
    a main file submitted under another name or folder, backslashes, ``..`` detours).
    """
    patches: list[Patch] = []
    for ref in trace.refs:
        if ref.slot is None or ref.kind == CACHE_GLOB:
            continue
        target_abs = resolve(blend_dir, ref.path)
        if skip(target_abs):
            continue  # inside Blender's installation: left alone
        new = paths.blend_relative(place(target_abs), blend_checkout_path)
        if _wants_slash(ref) and not new.endswith("/"):
            new += "/"
        if new == ref.path:
            continue
        encoded = new.encode("utf-8", "surrogateescape")
        if len(encoded) + 1 > ref.slot.size:
            raise PathTooLong(
                f"{blend_path}: the path of {ref.referrer} would become {new!r} "
                f"({len(encoded)} bytes) in the checkout, but that field holds at most "
                f"{ref.slot.size - 1} bytes; shorten folder names or move the file closer "
                f"to the project"
            )
        patches.append(Patch(ref.slot, ref.path, new, ref.referrer))
    patches.sort(key=lambda p: p.slot.offset)
    return patches


def _wants_slash(ref: Ref) -> bool:
    if ref.kind == LISTED:
        return True
    return ref.kind == DIRECTORY and ref.path.replace("\\", "/").endswith("/")


def read_uncompressed(path: Path, compression: str) -> bytes:
    """The whole decompressed .blend in memory (offsets in slots refer to these bytes);
    for small files and tests: rewriting streams (``stream_rewritten``)."""
    return b"".join(blend_limits.read_chunks(path, compression))


def apply_patches(data: bytes, patches: list[Patch], source: Path) -> bytes:
    buf = bytearray(data)
    _patch_segment(buf, 0, patches, 0)
    _check_all_applied(patches, len(buf), source)
    return bytes(buf)


def _patch_segment(seg: bytearray | memoryview, start: int, patches: list[Patch],
                   first: int) -> int:
    """Write into ``seg`` (the bytes from ``start``) the part of each patch that falls
    in it; returns the index of the first patch that may reach past it (sorted by offset)."""
    end = start + len(seg)
    i = first
    while i < len(patches) and patches[i].slot.offset < end:
        p = patches[i]
        enc = p.new.encode("utf-8", "surrogateescape")
        field = enc + b"\0" * (p.slot.size - len(enc))
        lo, hi = max(p.slot.offset, start), min(p.slot.offset + p.slot.size, end)
        seg[lo - start:hi - start] = field[lo - p.slot.offset:hi - p.slot.offset]
        if p.slot.offset + p.slot.size > end:
            break  # its rest lies in the next segment
        i += 1
    return i


def _check_all_applied(patches: list[Patch], total: int, source: Path) -> None:
    if patches and max(p.slot.offset + p.slot.size for p in patches) > total:
        raise BlendFileError(
            f"{source} changed while it was being collected (a path field lies past "
            f"its end); save it and try again",
            path=str(source),
        )


def compress(data: bytes, compression: str) -> bytes:
    """Compress like the original, with nothing in the output that varies between runs
    (gzip: no time stamp, no file name)."""
    out = io.BytesIO()
    writer = _SegmentWriter(out, compression)
    writer.write(data)
    writer.finish()
    return out.getvalue()


class _SegmentWriter:
    """Compresses segment after segment into ``out``: zstd as one frame per segment
    (each compressed in one go; one segment gives exactly the bytes a whole-file
    compression gave), gzip as one stream (the same bytes as ``gzip.compress`` with no
    time stamp, however it is fed), uncompressed as is."""

    def __init__(self, out: BinaryIO, compression: str) -> None:
        self._out = out
        self._compression = compression
        self._zstd: Any = None
        self._gzip: Any = None
        if compression == "zstd":
            import zstandard

            self._zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
        elif compression == "gzip":
            self._gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # gzip container

    def write(self, segment: bytes | bytearray | memoryview) -> None:
        if self._zstd is not None:
            self._out.write(self._zstd.compress(segment))
        elif self._gzip is not None:
            self._out.write(self._gzip.compress(segment))
        else:
            self._out.write(segment)

    def finish(self) -> None:
        if self._gzip is not None:
            self._out.write(self._gzip.flush())


def stream_rewritten(source: Path, compression: str, patches: list[Patch],
                     out: BinaryIO) -> None:
    """Write the patched copy of ``source`` to ``out``, ``SEGMENT`` bytes at a time: the
    memory it takes does not grow with the .blend's size."""
    writer = _SegmentWriter(out, compression)
    buf = bytearray()
    start = total = first = 0
    for chunk in blend_limits.read_chunks(source, compression):
        buf += chunk
        total += len(chunk)
        while len(buf) >= SEGMENT:  # each turn takes SEGMENT bytes out of buf
            with memoryview(buf) as view, view[:SEGMENT] as seg:  # patched in place
                first = _patch_segment(seg, start, patches, first)
                writer.write(seg)
            del buf[:SEGMENT]
            start += SEGMENT
    _check_all_applied(patches, total, source)
    if buf or not total:
        _patch_segment(buf, start, patches, first)
        writer.write(buf)
    writer.finish()


def write_rewritten(
    source: Path,
    compression: str,
    patches: list[Patch],
    dest: Path,
    *,
    cache_dir: Path | None = None,
) -> Path:
    """Make the patched copy of ``source`` (deterministic bytes); return the file holding it.

    With a cache folder that file is the cache entry itself, not a copy in ``dest``: its
    path and mtime stay the same between submissions, so its checksum comes from the
    checksum cache too and an unchanged resubmission hashes nothing.
    """
    cached = None
    if cache_dir is not None:
        st = source.stat()
        h = hashlib.sha256()
        h.update(
            f"{source}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}|"
            f"{compression}|{ZSTD_LEVEL}".encode(
                "utf-8", "surrogateescape"
            )
        )
        for p in patches:
            h.update(f"|{p.slot.offset}:{p.slot.size}:{p.new}".encode("utf-8", "surrogateescape"))
        cached = cache_dir / "rewritten" / f"{h.hexdigest()}.blend"
        if _mark_used(cached):
            return cached
    if cached is not None:
        # Written aside and renamed into place: a reader never sees a partial entry, and
        # one already open keeps reading the (identical) bytes it opened.
        tmp = cached.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as f:
                stream_rewritten(source, compression, patches, f)
            os.replace(tmp, cached)
            _prune(cached.parent, keep=REWRITE_CACHE_KEEP)
            if _mark_used(cached):
                return cached
        except OSError as exc:
            log.warning("could not write the rewrite cache %s: %s", cached, exc)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()  # gone already once renamed into place
    try:
        with dest.open("wb") as f:
            stream_rewritten(source, compression, patches, f)
    except BaseException:
        with contextlib.suppress(OSError):
            dest.unlink()  # a full disk must not leave a partial copy
        raise
    return dest


def write_whole(path: Path, data: bytes) -> None:
    """Write ``path`` whole, or leave nothing: a full disk must not leave a partial file."""
    try:
        path.write_bytes(data)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _used_stamp(entry: Path | str) -> Path:
    return Path(f"{entry}.used")


def _mark_used(entry: Path) -> bool:
    """Stamp a cache entry as used now, on a small file beside it: the entry itself is not
    touched (the checksum cache keys on its mtime AND ctime, and any stamp on it would
    move its ctime); False when the entry is not there.

    The explicit stamp works whatever the disk's atime mount option; pruning goes by it, so
    an entry a running submission took is never the one removed.
    """
    if not entry.is_file():
        return False
    with contextlib.suppress(OSError):  # no stamp: pruned sooner, still correct
        _used_stamp(entry).touch()
    return True


def _prune(
    folder: Path, *, keep: int, min_age_s: float = REWRITE_CACHE_MIN_AGE_S,
    now: float | None = None,
) -> None:
    """Keep the ``keep`` most recently used cached copies: the cache must not grow without
    end. Nothing used in the last ``min_age_s`` seconds goes, however many there are."""
    cutoff_ns = int(((time.time() if now is None else now) - min_age_s) * 1e9)
    entries = []
    for entry in os.scandir(folder):
        if entry.name.endswith(".blend"):
            try:
                st = entry.stat()
            except OSError:
                continue
            try:
                stamp_ns = _used_stamp(entry.path).stat().st_mtime_ns
            except OSError:
                stamp_ns = 0
            entries.append((max(st.st_atime_ns, st.st_mtime_ns, stamp_ns), entry.path))
    entries.sort(reverse=True)
    for used_ns, path in entries[keep:]:
        if used_ns >= cutoff_ns:
            continue
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.unlink(_used_stamp(path))
