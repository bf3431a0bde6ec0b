"""Read ONE .blend file and list every path it stores, with where each path lives.

BAT (``blender_asset_tracer``) reads the file and its block walkers find most kinds of
paths; this module adds what BAT 1.23 misses on Blender 5 files (text data-blocks on
external files, IES/OSL files in material, world and node-group trees, movie clips and
cache files that are sequences, images packed as several files) and records, for each
path, the byte range of its field in the uncompressed file. Rewriting then patches
those bytes directly, without reading the file with BAT again, and the whole result can
be cached as JSON.

Each file is traced whole (not only the blocks another file links), which is exactly
what Blender reports when it opens that file, and what its rewritten copy must cover.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BlendFileError
from . import image_blocks
from .bat_blendfile import open_blendfile

log = logging.getLogger(__name__)

# Kinds of references: how a stored path expands to files on disk.
FILE = "file"  # one file
SEQUENCE = "sequence"  # numbered frames next to the stored (first) frame
UDIM = "udim"  # <UDIM> / <UVTILE> tiles
DIRECTORY = "directory"  # every file below a folder (fluid caches, bakes)
CACHE_GLOB = "cache_glob"  # //blendcache_<blend name>/<name>_*.bphys, derived, no field
LISTED = "listed"  # a folder plus explicit file names (image strips)
LIBRARY = "library"  # another .blend file

_MCLIP_SRC_SEQUENCE = 1
_NODE_EXTERNAL = 1  # NODE_IES_EXTERNAL and NODE_SCRIPT_EXTERNAL
_SKIP_CODES = {b"ID", b"WM", b"SN", b"GR", b"BR", b"LS", b"WS", b"DATA"}
_NODE_TREE_OWNERS = {b"MA", b"WO", b"SC", b"TE", b"LA"}


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a path string lives in the uncompressed .blend: a fixed-size char field."""

    offset: int
    size: int  # bytes available, the terminating NUL included
    holds_dir: bool = False  # True: the field holds the folder only (sequencer strips)


@dataclass(frozen=True, slots=True)
class Ref:
    """One path stored in a .blend file."""

    kind: str
    path: str  # as stored (raw bytes decoded with surrogateescape); folder for LISTED
    referrer: str  # which data-block, e.g. "IM wood" or "OB cloth.modifiers[0]"
    slot: Slot | None  # None: derived path, nothing to rewrite
    members: tuple[str, ...] = ()  # file names for LISTED

    def to_json(self) -> list[Any]:
        s = self.slot
        return [
            self.kind,
            self.path,
            self.referrer,
            None if s is None else [s.offset, s.size, s.holds_dir],
            list(self.members),
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> Ref:
        kind, path, referrer, slot, members = data
        return cls(kind, path, referrer, None if slot is None else Slot(*slot), tuple(members))


@dataclass
class BlendTrace:
    """Every path one .blend file stores."""

    refs: list[Ref] = field(default_factory=list)
    compression: str = "none"  # "none", "gzip" or "zstd": how the file on disk is stored
    warnings: list[str] = field(default_factory=list)  # data-blocks that could not be read

    def to_json(self) -> dict[str, Any]:
        return {
            "compression": self.compression,
            "refs": [r.to_json() for r in self.refs],
            "warnings": self.warnings,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BlendTrace:
        return cls(
            [Ref.from_json(r) for r in data["refs"]], data["compression"], list(data["warnings"])
        )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _name(block: Any) -> str:
    try:
        raw = block[b"id", b"name"]
    except KeyError:
        return block.dna_type_name
    return f"{_text(raw[:2])} {_text(raw[2:])}"


def trace_blend(path: Path) -> BlendTrace:
    """List every path stored in the .blend at ``path``.

    Raises BlendFileError (naming the file) when it is not a .blend file, is truncated,
    or cannot be read by BAT (for example a file from a much newer Blender).
    """
    from blender_asset_tracer.blendfile import exceptions as bat_exc

    try:
        bfile = open_blendfile(path)
    except bat_exc.BlendFileError as exc:
        raise BlendFileError(
            f"{path} is not a .blend file Blender can read ({exc})", path=str(path)
        ) from exc
    except (struct.error, EOFError, ValueError, KeyError, IndexError) as exc:
        raise BlendFileError(
            f"{path} looks truncated or damaged, or is from a newer Blender than this add-on "
            f"can read ({type(exc).__name__}: {exc})",
            path=str(path),
        ) from exc
    except OSError as exc:
        raise BlendFileError(f"cannot read {path}: {exc}", path=str(path)) from exc
    try:
        compression = "zstd" if bfile.is_compressed else "none"
        if bfile.is_compressed:
            with path.open("rb") as f:
                if f.read(2) == b"\x1f\x8b":
                    compression = "gzip"
        problems: list[str] = []
        refs = list(_walk(bfile, problems))
    except BlendFileError:
        raise
    except Exception as exc:  # BAT raises many kinds on damaged files
        raise BlendFileError(
            f"{path} could not be traced; it may be damaged or from a newer Blender "
            f"({type(exc).__name__}: {exc})",
            path=str(path),
        ) from exc
    finally:
        bfile.close()
    warnings = [f"{path}: {p}; files it uses may be missing from the checkout" for p in problems]
    for w in warnings:
        log.warning("%s", w)
    return BlendTrace(refs, compression, warnings)


def _walk(bfile: Any, problems: list[str]) -> Iterator[Ref]:
    """Every path in the file. A data-block that cannot be read (an unexpected layout in a
    newer Blender, say) is noted in ``problems`` and skipped: the rest still counts."""
    from blender_asset_tracer.trace import blocks2assets

    seen: set[tuple[int, str]] = set()

    def once(ref: Ref | None) -> Iterator[Ref]:
        if ref is None or not ref.path:
            return
        key = (ref.slot.offset if ref.slot else -1, ref.path)
        if key not in seen:
            seen.add(key)
            yield ref

    for head, code in bfile.walk():
        if len(code) > 2 or code in _SKIP_CODES:
            continue
        try:
            if code == b"IM":
                image = image_blocks.read_image(bfile, head)
                if image is not None:
                    if not image.skipped:
                        yield from once(_image_ref(image, bfile, head))
                    continue
            block = bfile.block_at(head)
            if code == b"IM" and _image_has_packed_files(block):
                continue
            found = [_as_stored(bfile, ref) for ref in _extra_refs(block)]
            found += [
                _as_stored(bfile, _from_usage(block, usage))
                for usage in blocks2assets.iter_assets(block)
            ]
        except BlendFileError:
            raise  # the file is damaged (a list that loops, say): not one data-block
        except Exception as exc:  # BAT raises many kinds on layouts it does not know
            problems.append(f"data-block {_safe_name(block)} could not be read ({exc!r})")
            continue
        for ref in found:
            yield from once(ref)


def _safe_name(block: Any) -> str:
    try:
        return _name(block)
    except Exception:
        return repr(block.code)


def _as_stored(bfile: Any, ref: Ref | None) -> Ref | None:
    """The path exactly as the field holds it (BAT turns backslashes into slashes, but
    a path written on Windows must be seen, and rewritten, as it is)."""
    if ref is None or ref.slot is None or ref.slot.holds_dir:
        return ref
    bfile.fileobj.seek(ref.slot.offset)
    raw = bfile.fileobj.read(ref.slot.size).split(b"\0", 1)[0]
    stored = _text(raw)
    if stored == ref.path:
        return ref
    return Ref(ref.kind, stored, ref.referrer, ref.slot, ref.members)


def _image_has_packed_files(block: Any) -> bool:
    try:
        return bool(block.get((b"packedfiles", b"first"), default=0))
    except KeyError:
        return False


def _field_slot(block: Any, fld: Any, *, holds_dir: bool = False) -> Slot | None:
    """The byte range of a fixed-size char field that is a direct member of ``block``."""
    if fld.name.is_pointer:
        return _pointer_string_slot(block, fld.name.name_only)
    if not any(f is fld for f in block.dna_type.fields):
        log.debug("field %s is not a direct member of %r; not rewritable", fld, block)
        return None
    return Slot(block.file_offset + fld.offset, fld.name.array_size, holds_dir)


def _pointer_string_slot(block: Any, name: bytes) -> Slot | None:
    """A ``char *`` field: the string lives in its own DATA block of exactly that size."""
    ptr = block.get(name, default=0)
    if not ptr:
        return None
    target = block.bfile.dereference_pointer(ptr)
    if target is None:
        return None
    return Slot(target.file_offset, target.size)


def _referrer(block_name: bytes, read_block: Callable[[], Any]) -> str:
    """Who stores a path, as messages name it: "IM wood". ``read_block`` gives the block
    (only needed for one without a name: images are read without their block)."""
    referrer = _text(block_name)
    if referrer == "-unnamed-" or not referrer:
        return _name(read_block())
    if len(referrer) > 2 and referrer[:2].isupper():
        return f"{referrer[:2]} {referrer[2:]}"
    return referrer


def _image_kind(source: int) -> str:
    return {image_blocks.SRC_TILED: UDIM, image_blocks.SRC_SEQUENCE: SEQUENCE}.get(source, FILE)


def _image_ref(image: image_blocks.ImageFields, bfile: Any, head: int) -> Ref:
    kind = _image_kind(image.source)
    referrer = _referrer(image.id_name, lambda: bfile.block_at(head))
    return Ref(kind, _text(image.path), referrer,
               Slot(image.path_offset, image.path_size))


def _from_usage(block: Any, usage: Any) -> Ref | None:
    """Turn BAT's BlockUsage into a Ref, with the kind and slot BAT does not give."""
    path = _text(bytes(usage.asset_path))
    referrer = _referrer(usage.block_name, lambda: block)
    code = block.code

    if code == b"LI":
        return Ref(LIBRARY, path, referrer, _field_slot(usage.block, usage.path_full_field))

    if usage.path_full_field is None:  # sequencer strip: folder + file name(s)
        return _strip_ref(usage, path, referrer)

    fld = usage.path_full_field
    if usage.block.dna_type_name == "PointCache" and fld.name.name_only == b"name":
        # BAT's derived //blendcache_<blend>/<name>_*.bphys: no field holds that path.
        return Ref(CACHE_GLOB, path, referrer, None)

    kind = FILE
    if code == b"IM":
        source = block.get(b"source", default=1)
        kind = _image_kind(source)
    elif code == b"MC":
        if block.get(b"source", default=0) == _MCLIP_SRC_SEQUENCE:
            kind = SEQUENCE
    elif code == b"CF":
        if block.get(b"is_sequence", default=0):
            kind = SEQUENCE
    elif usage.is_sequence:
        # Volumes mark sequences; modifiers mark cache folders (fluid, bakes, ocean).
        kind = SEQUENCE if code == b"VO" else DIRECTORY
    return Ref(kind, path, referrer, _field_slot(usage.block, fld))


def _strip_ref(usage: Any, path: str, referrer: str) -> Ref | None:
    from blender_asset_tracer.blendfile import iterators

    strip = usage.block
    dir_field = usage.path_dir_field
    directory = _text(strip.get(b"dir", default=b""))
    slot = Slot(strip.file_offset + dir_field.offset, dir_field.name.array_size, True)
    if not usage.is_sequence:  # movie and sound strips: one file
        return Ref(LISTED, directory, referrer, slot, (path.rsplit("/", 1)[-1],))
    elems = strip.get_pointer(b"stripdata")
    names: list[str] = []
    if elems is not None:
        for elem in iterators.dynamic_array(elems):
            name = _text(elem.get(b"name", default=b""))
            if name and name not in names:
                names.append(name)
    return Ref(LISTED, directory, referrer, slot, tuple(names))


def _extra_refs(block: Any) -> Iterator[Ref]:
    """Paths BAT 1.23 does not report."""
    code = block.code
    if code == b"TX":
        slot = _pointer_string_slot(block, b"name")
        if slot is not None:
            target = block.bfile.dereference_pointer(block.get(b"name"))
            path = _text(target.as_bytes_string())
            yield Ref(FILE, path, _name(block), slot)
        return
    if code == b"NT":
        yield from _node_tree_refs(block, _name(block))
        return
    if code in _NODE_TREE_OWNERS:
        tree = block.get_pointer(b"nodetree", default=None)
        if tree is not None:
            yield from _node_tree_refs(tree, _name(block))


def _node_tree_refs(tree: Any, owner: str) -> Iterator[Ref]:
    """IES profiles, OSL scripts and file-path sockets (geometry-nodes Import nodes), in
    any node tree."""
    from blender_asset_tracer.blendfile import iterators

    for node in iterators.listbase(tree.get_pointer((b"nodes", b"first"), default=None)):
        yield from _file_path_sockets(node, owner)
        storage = node.get_pointer(b"storage", default=None)
        if storage is None or storage.dna_type_name not in ("NodeShaderTexIES", "NodeShaderScript"):
            continue
        if storage.get(b"mode", default=0) != _NODE_EXTERNAL:
            continue
        raw, fld = storage.get(b"filepath", return_field=True)
        node_name = _text(node.get(b"name", default=b""))
        yield Ref(FILE, _text(raw), f"{owner} node {node_name}", _field_slot(storage, fld))


def _file_path_sockets(node: Any, owner: str) -> Iterator[Ref]:
    """Input sockets of the file-path kind (Import OBJ/CSV/PLY/STL/Text/VDB nodes...)."""
    from blender_asset_tracer.blendfile import iterators

    for sock in iterators.listbase(node.get_pointer((b"inputs", b"first"), default=None)):
        if sock.get(b"idname", default=b"") != b"NodeSocketStringFilePath":
            continue
        value = sock.get_pointer(b"default_value", default=None)
        if value is None or value.dna_type_name != "bNodeSocketValueString":
            continue
        raw, fld = value.get(b"value", return_field=True)
        if raw:
            node_name = _text(node.get(b"name", default=b""))
            yield Ref(FILE, _text(raw), f"{owner} node {node_name}", _field_slot(value, fld))
