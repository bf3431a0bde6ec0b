"""Tracing a .blend with thousands of image data-blocks: memory in proportion to the
paths it keeps, and the one-read image reader answering exactly what BAT's walker does.

The memory probe runs in its own process (``trace_memory_probe.py``) on a .blend made
by real Blender with 10,000 images, and measures its own peak (``VmHWM``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shaman_addon.collect import image_blocks, trace
from shaman_addon.collect.bat_blendfile import open_blendfile
from tests.support.blendgen import ProductionInfo, bpy_python

SUPPORT = Path(__file__).resolve().parents[1] / "support"
IMAGES = 10_000
SPOOL_KIB = 8 * 1024  # a decompressed .blend up to 8 MiB is held in memory
PER_PATH_KIB = 1.6  # a path kept: its Ref, Slot, texts, and its share of the index


@pytest.fixture(scope="module")
def many_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("many-images")
    subprocess.run([bpy_python(), str(SUPPORT / "many_images.py"), str(out), str(IMAGES)],
                   check=True, capture_output=True, timeout=600)
    return out / "project" / "main.blend"


def test_tracing_memory_grows_with_the_paths_kept(many_images: Path) -> None:
    """BAT kept an object per block (three per image) and the decompressed file in memory
    up to 32 MiB: 38 MB for these 10,000 images. Now: the kept paths, a 24-byte index
    entry per block, and at most the spool."""
    run = subprocess.run([sys.executable, str(SUPPORT / "trace_memory_probe.py"),
                          str(many_images)], capture_output=True, text=True, timeout=600,
                         check=False)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    print(f"\ntrace memory probe: {report}")
    assert report["refs"] == IMAGES
    assert report["reset"], "VmHWM could not be reset: the peak would include start-up"
    assert report["peak_growth_kib"] < SPOOL_KIB + PER_PATH_KIB * IMAGES, report


def test_one_read_image_reader_matches_bats_walker(
        many_images: Path, every_kind_production: ProductionInfo,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every image kind (file, sequence, UDIM, movie, packed, generated, in libraries):
    the same paths, kinds, referrers and byte ranges with and without the fast reader."""
    blends = [Path(every_kind_production.main_blend),
              *(Path(p) for p in every_kind_production.libraries)]
    fast = {b: trace.trace_blend(b).refs for b in [*blends, many_images]}
    images_read = sum(1 for refs in fast.values() for r in refs if r.referrer[:3] == "IM ")
    with monkeypatch.context() as m:
        m.setattr(image_blocks, "read_image", lambda _bfile, _head: None)
        for blend, refs in fast.items():
            assert trace.trace_blend(blend).refs == refs, blend
    assert images_read > IMAGES  # the fast reader was the one used above


def test_pointers_are_found_by_address_and_blocks_read_on_demand(
        every_kind_production: ProductionInfo) -> None:
    """The compact index answers every pointer BAT's dict did: each block's stored
    address leads back to that block (or, for a shared address, to the last block
    stored there), and an unknown address to nothing."""
    bfile = open_blendfile(Path(every_kind_production.main_blend))
    try:
        heads = list(bfile.index.walk())
        assert heads and bfile.index.count > len(heads)  # DATA blocks are indexed too
        for head, code in heads:
            block = bfile.block_at(head)
            assert block.code == code
            again = bfile.dereference_pointer(block.addr_old)
            assert again is not None and again.addr_old == block.addr_old
            # Blender writes a few small blocks (REND, GLOB) at one address: as in BAT,
            # the last in the file is the one found.
            assert again.file_offset >= block.file_offset
        bfile.strict_pointer_mode = False
        assert bfile.dereference_pointer(0xDEAD_BEEF_0000_0001) is None
        assert [b.code for b in bfile.find_blocks_from_code(b"SC")] == [b"SC"]
    finally:
        bfile.close()
