"""A compact index of a .blend's data blocks: what tracing keeps instead of one object
per block.

A .blend holds a few blocks per data-block (30,000 images make some 90,000 blocks), and
BAT keeps a Python object for each of them, plus two dicts, for as long as the file is
open. Tracing only needs to visit the blocks that can hold a path (ID blocks: images,
libraries, caches...) and to find, by its stored address, a block one of them points to.
So this index keeps, per block, two 8-byte numbers in typed arrays (the stored address
and where its header is in the file, sorted by address for a binary search), plus the
header position of each non-``DATA`` block grouped by code, in file order. A block's
Python object is made when it is visited or pointed to, and dropped after use.

About 24 bytes a block instead of several hundred; headers are read with one ``struct``
call each.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import BlendFileError
from . import blend_limits

_DATA = b"DATA"
_ENDB = b"ENDB"
_DECODED_HERE = (b"DNA1", b"GLOB")  # BAT decodes these two from the file
_CHUNK = 1 << 20


class BlockIndex:
    """Where each block of one .blend is, by stored address and by code."""

    def __init__(self) -> None:
        self._addrs = array("Q")
        self._heads = array("Q")
        self._walk = array("Q")  # every non-DATA block, in file order...
        self._walk_codes = array("I")  # ...and its code, as a number
        self._by_code: dict[bytes, array[int]] = {}
        self.count = 0

    def add(self, code: bytes, addr: int, head: int) -> None:
        self._addrs.append(addr)
        self._heads.append(head)
        self.count += 1
        if code != _DATA:
            self._walk.append(head)
            self._walk_codes.append(int.from_bytes(code[:4].ljust(4, b"\0"), "little"))
            self._by_code.setdefault(code, array("Q")).append(head)

    def finish(self) -> None:
        """Sort by address (stable: of two blocks at one address, the later in the file
        wins, as in BAT)."""
        order = sorted(range(len(self._addrs)), key=self._addrs.__getitem__)
        self._addrs = array("Q", (self._addrs[i] for i in order))
        self._heads = array("Q", (self._heads[i] for i in order))

    def head_of(self, addr: int) -> int | None:
        """The header position of the block stored at ``addr``, None if none is."""
        i = bisect_right(self._addrs, addr) - 1
        if i >= 0 and self._addrs[i] == addr:
            return int(self._heads[i])
        return None

    def walk(self) -> Iterator[tuple[int, bytes]]:
        """Header position and code of every non-``DATA`` block, in file order."""
        for head, code in zip(self._walk, self._walk_codes, strict=True):
            yield head, code.to_bytes(4, "little").rstrip(b"\0")

    def of_code(self, code: bytes) -> list[int]:
        return list(self._by_code.get(code, ()))



def read_headers(bfile: Any, fileobj: IO[bytes], path: Path) -> Iterator[tuple[int, Any]]:
    """Each block header from the current position: ``(header position, fields)``, with
    the file just past the header when yielded (BAT decodes ``DNA1`` and ``GLOB`` from
    there; it may move the file). Headers are read from 1 MiB chunks, so a file of small
    blocks costs a read per chunk, not two calls per block.

    Bounded: every turn moves forward by a header at least; a negative length (a damaged
    file that would send the reading back) and an element count above the block's size
    in bytes (BAT would iterate that many elements) are refused as damaged."""
    hstruct = bfile.block_header_struct
    make = bfile.block_header_fields
    hsize = hstruct.size
    read0 = bfile.header.endian.read_data0
    head = fileobj.tell()
    buf, buf_at = b"", head
    while True:
        if head + hsize > buf_at + len(buf):
            fileobj.seek(head)
            buf, buf_at = fileobj.read(max(_CHUNK, hsize)), head
            if len(buf) < hsize:
                return  # a truncated file ends here, as BAT reads it
        fields = make(*hstruct.unpack_from(buf, head - buf_at))
        code = read0(fields.code)
        if code == _ENDB:
            return
        if fields.len < 0:
            raise BlendFileError(f"{path} is damaged: a data block stores a negative length.",
                                 path=str(path))
        if fields.nr > max(fields.len, 1) or fields.nr < 0:
            raise blend_limits.too_large(
                path, f"element count of a {code!r} data block ({fields.len} bytes)",
                fields.nr, fields.len)
        if code in _DECODED_HERE:
            fileobj.seek(head + hsize)
        yield head, fields
        head += hsize + fields.len

