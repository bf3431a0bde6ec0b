"""Ceilings on what reading a .blend may cost: decompressed size, DNA catalogue counts,
block counts and linked-list lengths, checked from our side before BAT allocates.

A few damaged bytes in a .blend's header or catalogue can ask BAT for billions of loop
turns or gigabytes of memory; a small zstd or gzip file can expand to terabytes. No real
file comes near these ceilings (a Blender 5 catalogue is about 130 KB with some 1,000
structs and 10,000 fields; its largest array field has 4,096 elements), so a file past
one is refused as damaged, with the ceiling named, instead of being read.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path
from typing import IO, Any

from ..errors import BlendCatalogueTooLarge, BlendFileError, BlendListLoops, BlendTooLarge

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

DECOMPRESSED_MIN_CEILING = 1 << 30
"""Any compressed .blend may expand to 1 GiB..."""
DECOMPRESSED_RATIO = 200
"""...and a bigger one to 200 times its compressed size (real scenes compress 3-20x)..."""
DECOMPRESSED_MAX_CEILING = 64 << 30
"""...but never past 64 GiB."""
SPOOL_BYTES = 8 << 20
"""A decompressed .blend up to this size is held in memory; a bigger one in a temp file."""
CHUNK = 1 << 20

DNA_BLOCK_CEILING = 8 << 20  # bytes of the DNA1 block (real: ~130 KB)
DNA_COUNT_CEILING = 1 << 16  # names, types and structs each (real: a few thousand)
DNA_FIELDS_CEILING = 1 << 18  # fields of all structs together (real: ~10,000)
ARRAY_CEILING = 1 << 20  # elements of one array field (real: at most 4,096)
LIST_CEILING = 1 << 20  # items of one linked list


def decompressed_ceiling(compressed_size: int) -> int:
    return min(max(DECOMPRESSED_MIN_CEILING, compressed_size * DECOMPRESSED_RATIO),
               DECOMPRESSED_MAX_CEILING)


def compression_of(path: Path) -> str:
    """``"gzip"``, ``"zstd"`` or ``"none"``, from the file's first bytes."""
    with path.open("rb") as f:
        magic = f.read(4)
    if magic.startswith(GZIP_MAGIC):
        return "gzip"
    return "zstd" if magic == ZSTD_MAGIC else "none"


def decompressing_reader(raw: IO[bytes], compression: str) -> Any:
    """A streaming reader of ``raw``'s decompressed bytes."""
    if compression == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(raw)


def read_chunks(path: Path, compression: str) -> Any:
    """The decompressed bytes of ``path`` in chunks of at most ``CHUNK``, refusing a file
    that expands past its ceiling (raises the BlendFileError family, naming the file)."""
    size = path.stat().st_size
    ceiling = decompressed_ceiling(size)
    total = 0
    try:
        with path.open("rb") as raw:
            reader = raw if compression == "none" else decompressing_reader(raw, compression)
            with reader:
                while total <= ceiling:  # each turn reads at least one byte or ends
                    chunk = reader.read(CHUNK)
                    if not chunk:
                        return
                    total += len(chunk)
                    if total > ceiling:
                        break
                    yield chunk
    except BlendFileError:
        raise
    except Exception as exc:  # OSError, EOFError, zlib.error, zstandard.ZstdError
        raise BlendFileError(f"Cannot decompress {path}: {exc}.", path=str(path)) from exc
    raise BlendTooLarge(
        f"{path} expands past {ceiling >> 20} MiB when decompressed ({size} bytes on disk); "
        f"no real .blend does (the ceiling is {DECOMPRESSED_RATIO} times the file's size, at "
        f"least {DECOMPRESSED_MIN_CEILING >> 30} GiB): the file is damaged or not a .blend "
        "saved by Blender.", path=str(path))


def decompress_spooled(path: Path, compression: str) -> IO[bytes]:
    """The decompressed .blend as a seekable file: in memory up to ``SPOOL_BYTES``, in a
    temp file beyond (it goes away when closed)."""
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned)
    try:
        for chunk in read_chunks(path, compression):
            out.write(chunk)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def too_large(path: Path, what: str, value: int, ceiling: int) -> BlendCatalogueTooLarge:
    return BlendCatalogueTooLarge(
        f"{path} is damaged: its {what} is {value}, past the ceiling of {ceiling} that no "
        "real .blend reaches; it was not read.", path=str(path))


def check_catalogue(path: Path, data: bytes, uint: struct.Struct, ushort2: struct.Struct) -> None:
    """Check the counts of a DNA1 block's catalogue before BAT builds it: BAT loops as
    many times as each count says, and makes an object per turn."""
    def count(offset: int, what: str) -> int:
        value = int(uint.unpack_from(data, offset)[0])
        if value > DNA_COUNT_CEILING:
            raise too_large(path, f"DNA catalogue's count of {what}", value, DNA_COUNT_CEILING)
        return value

    def skip_strings(offset: int, n: int) -> int:
        for _ in range(n):
            end = data.find(b"\0", offset)
            if end < 0:
                raise BlendFileError(f"{path} is damaged: its DNA catalogue ends inside "
                                     "a name.", path=str(path))
            offset = end + 1
        return (offset + 3) & ~3

    try:
        offset = skip_strings(12, count(8, "names"))
        types = count(offset + 4, "types")
        offset = skip_strings(offset + 8, types)
        offset = ((offset + 4 + 2 * types + 3) & ~3) + 4  # TLEN, lengths, STRC
        structs = count(offset, "structs")
        offset += 4
        fields = 0
        for _ in range(structs):
            fields += ushort2.unpack_from(data, offset)[1]
            if fields > DNA_FIELDS_CEILING:
                raise too_large(path, "DNA catalogue's count of fields", fields,
                                 DNA_FIELDS_CEILING)
            offset += 4 + 4 * ushort2.unpack_from(data, offset)[1]
    except struct.error as exc:
        raise BlendFileError(f"{path} is damaged: its DNA catalogue is cut short ({exc}).",
                             path=str(path)) from exc


def check_arrays(path: Path, structs: list[Any]) -> None:
    """After a new catalogue is built: no array field is past the ceiling (BAT reads an
    array element by element)."""
    for dna_struct in structs:
        for fld in dna_struct.fields:
            if fld.name.array_size > ARRAY_CEILING or fld.name.array_size < 0:
                raise too_large(path, f"array size of the field {fld.name.name_full!r}",
                                 fld.name.array_size, ARRAY_CEILING)


def bounded_listbase(original: Any) -> Any:
    """BAT's ``iterators.listbase``, refusing a list that leads back to an item already
    seen or runs past ``LIST_CEILING`` items (a damaged ``next`` pointer)."""
    def listbase(block: Any, next_path: Any = b"next") -> Any:
        seen: set[int] = set()
        for item in original(block, next_path):
            if item.file_offset in seen or len(seen) >= LIST_CEILING:
                path = item.bfile.filepath
                raise BlendListLoops(
                    f"{path} is damaged: a linked list ({item.dna_type_name}) leads back to "
                    f"itself or runs past {LIST_CEILING} items; it was not read.",
                    path=str(path))
            seen.add(item.file_offset)
            yield item

    listbase.bounded = True  # type: ignore[attr-defined]
    return listbase


def catalogue_too_large(path: Path, size: int) -> BlendCatalogueTooLarge:
    return too_large(path, "DNA catalogue's size in bytes", size, DNA_BLOCK_CEILING)
