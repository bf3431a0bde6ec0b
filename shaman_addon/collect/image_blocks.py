"""Image data-blocks read in one piece: the path, source and packed state of an ``IM``
block from one read of its bytes.

Images are by far the most numerous data-blocks with paths (a shot's texture sets hold
thousands), and reading each of their fields through BAT costs a seek, a read and
several lookups per field: some 100 µs an image, 3 s for 30,000. This reader looks the
fields' offsets up once per catalogue and unpacks them from one read; it answers exactly
what BAT's image walker and ``trace._from_usage`` do (a test compares the two on every
kind of image), and returns ``None`` for a layout it does not know, so the caller falls
back to BAT.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

SRC_FILE, SRC_SEQUENCE, SRC_MOVIE, SRC_TILED = 1, 2, 3, 6  # Image.source in DNA
_TRACED_SOURCES = {SRC_FILE, SRC_SEQUENCE, SRC_MOVIE, SRC_TILED}
_READ_AHEAD = 4096  # an Image struct is about 2 KB in Blender 5
_LAYOUTS_KEEP = 16  # one layout per catalogue; damaged files each bring their own


@dataclass(frozen=True)
class ImageFields:
    """What tracing needs of one image data-block."""

    skipped: bool  # packed into the .blend, or a source with no file (generated...)
    source: int
    id_name: bytes  # as stored, up to its NUL: b"IMwood"
    path: bytes  # as stored, up to its NUL
    path_offset: int  # in the uncompressed file
    path_size: int  # bytes of the field, the NUL included


@dataclass(frozen=True)
class _Layout:
    id_name: tuple[int, int]
    packed_pointers: tuple[int, ...]  # offsets of ``packedfile`` and ``packedfiles.first``
    source: int | None
    path: tuple[int, int]
    end: int
    pointer: struct.Struct
    short: struct.Struct


_LAYOUTS: dict[int, tuple[Any, _Layout | None]] = {}


def read_image(bfile: Any, head: int) -> ImageFields | None:
    """The fields of the ``IM`` block whose header is at ``head``, from one read of
    header and fields; None when its struct lacks one of them, is not known, or the
    block is shorter than the struct (left to BAT, which says what is wrong)."""
    hstruct = bfile.block_header_struct
    fileobj = bfile.fileobj
    fileobj.seek(head)
    data = fileobj.read(hstruct.size + _READ_AHEAD)
    if len(data) < hstruct.size:
        return None
    fields = bfile.block_header_fields(*hstruct.unpack_from(data))
    if not 0 <= fields.SDNAnr < len(bfile.structs):
        return None
    layout = _layout_of(bfile.structs[fields.SDNAnr], bfile.header)
    if layout is None or fields.len < layout.end:
        return None
    file_offset = head + hstruct.size
    data = data[hstruct.size:]
    if len(data) < layout.end:
        fileobj.seek(file_offset)
        data = fileobj.read(layout.end)
        if len(data) < layout.end:
            return None
    packed = any(layout.pointer.unpack_from(data, off)[0] for off in layout.packed_pointers)
    source = SRC_FILE if layout.source is None else layout.short.unpack_from(
        data, layout.source)[0]
    name_off, name_size = layout.id_name
    path_off, path_size = layout.path
    return ImageFields(
        skipped=packed or source not in _TRACED_SOURCES,
        source=source,
        id_name=data[name_off:name_off + name_size].split(b"\0", 1)[0],
        path=data[path_off:path_off + path_size].split(b"\0", 1)[0],
        path_offset=file_offset + path_off,
        path_size=path_size,
    )


def _layout_of(dna_struct: Any, header: Any) -> _Layout | None:
    key = id(dna_struct)
    cached = _LAYOUTS.get(key)
    if cached is not None and cached[0] is dna_struct:
        return cached[1]
    layout = _make_layout(dna_struct, header)
    if len(_LAYOUTS) >= _LAYOUTS_KEEP:
        _LAYOUTS.clear()
    _LAYOUTS[key] = (dna_struct, layout)  # the struct is held, so its id stays its own
    return layout


def _make_layout(dna_struct: Any, header: Any) -> _Layout | None:
    psize = header.pointer_size

    def find(path: Any) -> tuple[Any, int] | None:
        try:
            return dna_struct.field_from_path(psize, path)  # type: ignore[no-any-return]
        except (KeyError, OverflowError):
            return None

    id_name, path = find((b"id", b"name")), find(b"name")
    if id_name is None or path is None or path[0].name.is_pointer:
        return None
    packed = [f for f in (find(b"packedfile"), find((b"packedfiles", b"first"))) if f]
    if any(not f.name.is_pointer for f, _ in packed):
        return None
    source = find(b"source")
    if source is not None and source[0].size != 2:
        return None
    fields = [(id_name[1], id_name[0].size), (path[1], path[0].size)]
    fields += [(off, psize) for _, off in packed]
    if source is not None:
        fields.append((source[1], 2))
    endian = header.endian_str.decode()
    return _Layout(
        id_name=(id_name[1], id_name[0].size),
        packed_pointers=tuple(off for _, off in packed),
        source=None if source is None else source[1],
        path=(path[1], path[0].size),
        end=max(off + size for off, size in fields),
        pointer=struct.Struct(endian + ("Q" if psize == 8 else "I")),
        short=struct.Struct(endian + "h"),
    )
