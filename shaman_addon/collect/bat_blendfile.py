"""BAT's ``BlendFile`` with some of its private methods overridden (in ``bat_reader``),
and the version check that keeps those overrides honest.

Why the overrides: decoding a .blend's DNA catalogue is most of the cost of opening it,
and every file saved by one Blender version carries the same catalogue, so files share
the decoded structs (read-only descriptions) through ``decode_structs``, which also checks
the catalogue's counts against ``blend_limits``' ceilings before BAT loops over them;
``_open_file`` decompresses zstd and gzip files as a stream with a ceiling on the
decompressed size, into memory for a small one and a temp file beyond (BAT's own
decompression has no ceiling); ``_load_blocks``, ``dereference_pointer`` and
``find_blocks_from_code`` keep a compact index of the blocks instead of an object per
block (``block_index``), so tracing costs memory for the paths it keeps, not for the
file's size. BAT's ``iterators.listbase`` is wrapped so that a linked list that loops
is refused instead of followed forever.

They are private to BAT, so they are only trusted on the BAT version they were written
against: any other version is refused at the first .blend read, with both versions named,
instead of misreading files silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import BatVersionMismatch
from . import blend_limits

BAT_VERSION = "1.23"
"""The BAT release whose ``BlendFile._open_file`` and ``decode_structs`` are overridden."""

_HOOKS = ("_open_file", "decode_structs", "_load_blocks", "dereference_pointer",
          "find_blocks_from_code")
_blendfile_class: Any = None


def check_bat_version(installed: str, blendfile_class: type, iterators: Any = None) -> None:
    """Refuse a BAT whose private hooks may not be the ones overridden here (and whose
    ``iterators.listbase``, wrapped here, is missing)."""
    missing = [name for name in _HOOKS if not callable(getattr(blendfile_class, name, None))]
    if iterators is not None and not callable(getattr(iterators, "listbase", None)):
        missing.append("iterators.listbase")
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
    from blender_asset_tracer.blendfile import iterators

    check_bat_version(str(getattr(blender_asset_tracer, "__version__", "unknown")),
                      blendfile.BlendFile, iterators)

    _bound_lists(iterators)

    from . import bat_reader  # subclasses BAT's BlendFile: imported once BAT is checked

    return bat_reader.SharedDNABlendFile


def _bound_lists(iterators: Any) -> None:
    if not getattr(iterators.listbase, "bounded", False):
        iterators.listbase = blend_limits.bounded_listbase(iterators.listbase)


def path_of(bfile: Any) -> Path:
    return Path(bfile.filepath)
