"""The ``BlendFile`` tracing reads with: BAT's, with the private hooks described in
``bat_blendfile`` overridden. Imported only after ``bat_blendfile`` checked the BAT
version (``open_blendfile`` is the way in)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from blender_asset_tracer import blendfile
from blender_asset_tracer.blendfile import exceptions as bat_exc

from ..errors import BlendFileError
from . import blend_limits
from .bat_blendfile import path_of
from .block_index import BlockIndex, read_headers

_SMALL_READ = 1 << 16  # reads up to this size go straight through
_DNA_CACHE_KEEP = 8  # catalogues kept (damaged files each bring their own)
_DNA_CACHE: dict[tuple[bytes, int, str], tuple[list[Any], dict[bytes, int]]] = {}


class SharedDNABlendFile(blendfile.BlendFile):  # type: ignore[misc]
    index: BlockIndex

    def __init__(self, path: Path, mode: str = "rb") -> None:
        try:
            super().__init__(path, mode)  # reads every block header (_load_blocks)
            self.fileobj = _CappedReads(self.fileobj)  # type: ignore[assignment]
        except BaseException:
            fileobj = getattr(self, "fileobj", None)
            if fileobj is not None:
                fileobj.close()
            raise

    def _load_blocks(self) -> None:
        # The compact index instead of one object per block (block_index.py).
        self.structs.clear()
        self.sdna_index_from_id.clear()
        self.index = BlockIndex()
        for head, fields in read_headers(self, self.fileobj, path_of(self)):
            code = self.header.endian.read_data0(fields.code)
            if code in (b"DNA1", b"GLOB"):
                block = self.block_at(head, checked=False)
                (self.decode_structs if code == b"DNA1" else self.decode_glob)(block)
            self.index.add(code, fields.old, head)
        if not self.structs:
            raise bat_exc.NoDNA1Block("No DNA1 block in file, not a valid .blend file",
                                      self.filepath)
        self.index.finish()

    def block_at(self, head: int, *, checked: bool = True) -> Any:
        """The block whose header is at ``head``, read now (BAT's object for it)."""
        self.fileobj.seek(head)
        block = blendfile.BlendFileBlock(self)
        if checked and not 0 <= block.sdna_index < len(self.structs):
            raise BlendFileError(
                f"{path_of(self)} is damaged: a data block names struct "
                f"{block.sdna_index}, which its catalogue does not have.",
                path=str(path_of(self)))
        return block

    def walk(self) -> Iterator[tuple[int, bytes]]:
        """Header position and code of every non-``DATA`` block, in file order (read
        one with ``block_at``)."""
        return self.index.walk()

    def find_blocks_from_code(self, code: bytes) -> list[Any]:
        return [self.block_at(head) for head in self.index.of_code(code)]

    def dereference_pointer(self, address: int) -> Any:
        head = self.index.head_of(address)
        if head is None:
            if self.strict_pointer_mode:
                raise bat_exc.SegmentationFault("address does not exist", address)
            return None
        return self.block_at(head)

    def _open_file(self, path: Path, mode: str) -> Any:
        compression = blend_limits.compression_of(path)
        if compression == "none":
            return super()._open_file(path, mode)
        self.filepath = path
        self.raw_filepath = path
        self.is_compressed = True
        return blend_limits.decompress_spooled(path, compression)

    def decode_structs(self, block: Any) -> None:
        if block.size > blend_limits.DNA_BLOCK_CEILING:
            raise blend_limits.catalogue_too_large(path_of(self), block.size)
        start = self.fileobj.tell()
        data = self.fileobj.read(block.size)
        endian = self.header.endian
        key = (
            hashlib.sha1(data).digest(),
            self.header.pointer_size,
            getattr(endian, "__name__", str(endian)),
        )
        cached = _DNA_CACHE.get(key)
        if cached is not None:
            self.structs.extend(cached[0])
            self.sdna_index_from_id.update(cached[1])
            return
        # A new catalogue: checked before BAT loops over its counts, and after.
        blend_limits.check_catalogue(path_of(self), data, endian.UINT, endian.USHORT2)
        self.fileobj.seek(start)
        super().decode_structs(block)
        blend_limits.check_arrays(path_of(self), self.structs)
        if len(_DNA_CACHE) >= _DNA_CACHE_KEEP:  # one entry per Blender version, really
            del _DNA_CACHE[next(iter(_DNA_CACHE))]
        _DNA_CACHE[key] = (list(self.structs), dict(self.sdna_index_from_id))


class _CappedReads:
    """The file object BAT reads data through after the headers: a read never asks for
    more than the file still holds. A damaged block length (up to 2**63) would otherwise
    make Python allocate that much before reading."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.seek = raw.seek
        self.tell = raw.tell
        self.size = raw.seek(0, os.SEEK_END)
        raw.seek(0)

    def read(self, n: int = -1) -> bytes:
        if n > _SMALL_READ:
            n = max(0, min(n, self.size - self.raw.tell()))
        return self.raw.read(n)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)
