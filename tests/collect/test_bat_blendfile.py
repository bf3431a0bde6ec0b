"""The BAT version check in front of the overridden private BlendFile methods, and the
guards those overrides put around BAT's reads."""

from __future__ import annotations

import blender_asset_tracer
import pytest
from blender_asset_tracer import blendfile
from blender_asset_tracer.blendfile import iterators

from shaman_addon.collect import blend_limits
from shaman_addon.collect.bat_blendfile import BAT_VERSION, check_bat_version, open_blendfile
from shaman_addon.errors import BatVersionMismatch

from blend_templates import BLEND_NAME, Templates


def test_the_installed_bat_is_the_one_the_hooks_were_written_for() -> None:
    assert blender_asset_tracer.__version__ == BAT_VERSION
    check_bat_version(blender_asset_tracer.__version__, blendfile.BlendFile)


def test_another_version_is_refused_naming_both() -> None:
    with pytest.raises(BatVersionMismatch) as info:
        check_bat_version("1.24", blendfile.BlendFile)
    assert "1.24" in str(info.value) and BAT_VERSION in str(info.value)


def test_a_missing_hook_is_refused_naming_it() -> None:
    class Renamed:
        def decode_structs(self) -> None: ...

    with pytest.raises(BatVersionMismatch, match="_open_file"):
        check_bat_version(BAT_VERSION, Renamed)


def test_a_bat_without_listbase_is_refused_naming_it() -> None:
    class NoIterators:
        pass

    with pytest.raises(BatVersionMismatch, match=r"iterators\.listbase"):
        check_bat_version(BAT_VERSION, blendfile.BlendFile, NoIterators)


@pytest.mark.parametrize("how", ["plain", "zstd"])
def test_a_read_longer_than_the_file_gets_what_is_left(
        how: str, blend_templates: Templates) -> None:
    """BAT reads a data block by the length its header states; on a damaged file that
    is up to 2**63 bytes, which Python would try to allocate (MemoryError) before
    reading: the reads it makes never ask for more than the file holds."""
    path = blend_templates.folder("plain") / BLEND_NAME
    if how == "plain":
        path = path.with_name("uncompressed.blend")
        path.write_bytes(b"".join(blend_limits.read_chunks(
            blend_templates.folder("plain") / BLEND_NAME, "zstd")))
    bfile = open_blendfile(path)
    try:
        size = bfile.fileobj.seek(0, 2)
        bfile.fileobj.seek(size - 100)
        assert len(bfile.fileobj.read(1 << 40)) == 100
        assert getattr(iterators.listbase, "bounded", False)  # BAT's lists are bounded too
    finally:
        bfile.close()
