"""Rewritten copies of .blend files: new paths patched into a copy, byte-deterministic.

The byte range of every path field is known from tracing (``trace_blend.Slot``), so a copy
is the original (decompressed), with those ranges overwritten (the new path, then zero
bytes to the end of the field), compressed again like the original (zstd or gzip) at a
fixed level. No timestamps or names go into the output, so the same input
and the same changes always give the same bytes (and the same checksum on the server).
A new path that does not fit its fixed-size field is an error, never truncated.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BlendFileError, PathTooLong
from . import paths
from .expand import resolve
from .trace import CACHE_GLOB, DIRECTORY, LISTED, BlendTrace, Ref, Slot

log = logging.getLogger(__name__)

ZSTD_LEVEL = 3
REWRITE_CACHE_KEEP = 64  # rewritten copies kept in cache_dir/rewritten (last used first)
# An entry used this recently is never pruned: another submission (a second Blender, the
# command line) may be hashing or uploading it right now, straight from the cache.
REWRITE_CACHE_MIN_AGE_S = 12 * 3600
_CHUNK = 1 << 20


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
    blend_dir: Path,
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
    """The .blend's bytes as BAT saw them (offsets in slots refer to these)."""
    if compression == "none":
        return path.read_bytes()
    try:
        if compression == "gzip":
            import gzip

            with gzip.open(path, "rb") as f:
                return f.read()
        import zstandard

        with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as f:
            return f.read()
    except (OSError, EOFError) as exc:
        raise BlendFileError(f"cannot decompress {path}: {exc}", path=str(path)) from exc
    except Exception as exc:  # zstandard.ZstdError and friends
        raise BlendFileError(f"cannot decompress {path}: {exc}", path=str(path)) from exc


def apply_patches(data: bytes, patches: list[Patch], source: Path) -> bytes:
    buf = bytearray(data)
    for p in patches:
        enc = p.new.encode("utf-8", "surrogateescape")
        end = p.slot.offset + p.slot.size
        if end > len(buf):
            raise BlendFileError(
                f"{source} changed while it was being collected (a path field lies past "
                f"its end); save it and try again",
                path=str(source),
            )
        buf[p.slot.offset : end] = enc + b"\0" * (p.slot.size - len(enc))
    return bytes(buf)


def compress(data: bytes, compression: str) -> bytes:
    """Compress like the original, with nothing in the output that varies between runs
    (gzip: no time stamp, no file name)."""
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True).compress(data)
    if compression == "gzip":
        import gzip

        return gzip.compress(data, compresslevel=6, mtime=0)
    return data


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
    data = compress(
        apply_patches(read_uncompressed(source, compression), patches, source), compression
    )
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed into place: a reader never sees a partial entry, and
            # one already open keeps reading the (identical) bytes it opened.
            tmp = cached.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            write_whole(tmp, data)
            os.replace(tmp, cached)
            _prune(cached.parent, keep=REWRITE_CACHE_KEEP)
            if _mark_used(cached):
                return cached
        except OSError as exc:
            log.warning("could not write the rewrite cache %s: %s", cached, exc)
    dest.write_bytes(data)
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
