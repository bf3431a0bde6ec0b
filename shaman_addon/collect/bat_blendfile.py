"""BAT's ``BlendFile`` with two of its private methods overridden, and the version check
that keeps those overrides honest.

Why the overrides: decoding a .blend's DNA catalogue is most of the cost of opening it,
and every file saved by one Blender version carries the same catalogue, so files share
the decoded structs (read-only descriptions) through ``decode_structs``; and BAT
decompresses zstd files (Blender 5's default) to a temporary file on disk, where
``_open_file`` decompresses a small one into memory instead.

Both are private to BAT, so they are only trusted on the BAT version they were written
against: any other version is refused at the first .blend read, with both versions named,
instead of misreading files silently.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

from ..errors import BatVersionMismatch

BAT_VERSION = "1.23"
"""The BAT release whose ``BlendFile._open_file`` and ``decode_structs`` are overridden."""

_HOOKS = ("_open_file", "decode_structs")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_IN_MEMORY_LIMIT = 64 * 1024 * 1024  # compressed bytes; bigger files go through a temp file
_DNA_CACHE: dict[tuple[bytes, int, str], tuple[list[Any], dict[bytes, int]]] = {}
_blendfile_class: Any = None


def check_bat_version(installed: str, blendfile_class: type) -> None:
    """Refuse a BAT whose private hooks may not be the ones overridden here."""
    missing = [name for name in _HOOKS if not callable(getattr(blendfile_class, name, None))]
    if installed == BAT_VERSION and not missing:
        return
    detail = f" (it has no {', '.join(missing)})" if missing else ""
    raise BatVersionMismatch(
        f"Shaman Submitter reads .blend files with blender-asset-tracer {BAT_VERSION}, whose "
        f"private BlendFile methods it overrides, but version {installed} is installed"
        f"{detail}. Install blender-asset-tracer=={BAT_VERSION} (the wheel shipped in the "
        "extension's wheels/ folder).")


def open_blendfile(path: Path) -> Any:
    """A BAT ``BlendFile`` for ``path`` with the overrides described above."""
    global _blendfile_class
    if _blendfile_class is None:
        _blendfile_class = _make_class()
    return _blendfile_class(path)


def _make_class() -> Any:
    import blender_asset_tracer
    from blender_asset_tracer import blendfile
    from blender_asset_tracer.blendfile import exceptions as bat_exc

    check_bat_version(str(getattr(blender_asset_tracer, "__version__", "unknown")),
                      blendfile.BlendFile)

    class SharedDNABlendFile(blendfile.BlendFile):  # type: ignore[misc]
        def __init__(self, path: Path, mode: str = "rb") -> None:
            super().__init__(path, mode)  # reads every block header through the guard
            if isinstance(self.fileobj, _ForwardSkips):
                self.fileobj = self.fileobj.raw

        def _open_file(self, path: Path, mode: str) -> Any:
            data = _small_zstd(path)
            if data is None:
                return _ForwardSkips(super()._open_file(path, mode), path, bat_exc)
            if not data.startswith(b"BLENDER"):
                raise bat_exc.BlendFileError("Compressed file is not a blend file", path)
            self.filepath = path
            self.raw_filepath = path
            self.is_compressed = True
            return _ForwardSkips(io.BytesIO(data), path, bat_exc)

        def decode_structs(self, block: Any) -> None:
            start = self.fileobj.tell()
            data = self.fileobj.read(block.size)
            key = (
                hashlib.sha1(data).digest(),
                self.header.pointer_size,
                getattr(self.header.endian, "__name__", str(self.header.endian)),
            )
            cached = _DNA_CACHE.get(key)
            if cached is not None:
                self.structs.extend(cached[0])
                self.sdna_index_from_id.update(cached[1])
                return
            self.fileobj.seek(start)
            super().decode_structs(block)
            _DNA_CACHE[key] = (list(self.structs), dict(self.sdna_index_from_id))

    return SharedDNABlendFile


class _ForwardSkips:
    """The file object BAT reads the block headers through: a skip backwards is refused.

    BAT skips each block by the length its header stores; a damaged file with a negative
    length would send it back to the same header forever (the list of blocks growing
    until memory runs out). Used only while the headers are read, then unwrapped."""

    def __init__(self, raw: Any, path: Path, bat_exc: Any) -> None:
        self.raw = raw
        self.read = raw.read
        self.tell = raw.tell
        self._path = path
        self._bat_exc = bat_exc

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR and offset < 0:
            raise self._bat_exc.BlendFileError(
                "A data block stores a negative length: the file is damaged", self._path)
        return int(self.raw.seek(offset, whence))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def _small_zstd(path: Path) -> bytes | None:
    """The decompressed bytes of a small zstd file; None for anything else (BAT's way)."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return None
    if magic != _ZSTD_MAGIC or size > _IN_MEMORY_LIMIT:
        return None
    import zstandard

    with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as r:
        return bytes(r.read())
