"""The render helpers prove what the end-to-end render-job test relies on.

``render_frame`` must be deterministic (the same frame, rendered by two processes, from
the source and from a checkout of symlinks, gives the same pixels), must see what
changes between frames, and must see a missing file: a checkout without the shot's
texture, or without the linked library's texture, renders differently. ``pixels_equal``
compares decoded pixels, not bytes.

All Blender work is in three processes: the production, the source's frames, the
checkouts' frames.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from render_compare import (
    decode_png,
    differing_pixels,
    pixels_equal,
    render_frame,
    render_frames,
)
from render_production import FPS_BASE, FRAME_END, FRAME_START, RenderProduction


def _symlink_checkout(production: RenderProduction, folder: Path, *,
                      leave_out: Path | None = None) -> Path:
    """A checkout as Shaman makes one: every file a symlink to content kept elsewhere
    (here the source files); ``leave_out`` is not linked. The shot's path in it."""
    for path in production.project.rglob("*"):
        if path.is_file() and path != leave_out:
            link = folder / path.relative_to(production.project)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, link)
    return folder / production.blend.relative_to(production.project)


@pytest.fixture(scope="module")
def renders(render_production: RenderProduction,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("renders")
    jobs = root / "jobs"
    prod = render_production
    shot = prod.blend.relative_to(prod.project).as_posix()
    _symlink_checkout(prod, jobs / "whole")
    _symlink_checkout(prod, jobs / "no-texture", leave_out=prod.texture)
    _symlink_checkout(prod, jobs / "no-library-texture", leave_out=prod.library_texture)
    out = root / "png"
    names = ["source-3", "source-5"]
    render_frames([(prod.blend, 3, out / "source-3.png"), (prod.blend, 5, out / "source-5.png")])
    checkouts = ["whole", "no-texture", "no-library-texture"]
    render_frames([(Path(f"{{jobs}}/{name}/{shot}"), 3, out / f"{name}-3.png")
                   for name in checkouts], replace_jobs=jobs)
    names += [f"{name}-3" for name in checkouts]
    return {name: out / f"{name}.png" for name in names}


def test_a_frame_is_64_pixels_square(renders: dict[str, Path]) -> None:
    width, height, pixels = decode_png(renders["source-3"])
    assert (width, height) == (64, 64)
    assert len(set(pixels)) > 20  # a picture, not a blank frame


def test_the_same_frame_renders_the_same_from_a_checkout_in_another_process(
        renders: dict[str, Path]) -> None:
    assert renders["source-3"].read_bytes() != b""
    assert pixels_equal(renders["source-3"], renders["whole-3"])


def test_frames_differ(renders: dict[str, Path]) -> None:
    assert not pixels_equal(renders["source-3"], renders["source-5"])


def test_a_checkout_missing_the_texture_renders_differently(renders: dict[str, Path]) -> None:
    assert differing_pixels(renders["source-3"], renders["no-texture-3"]) > 100


def test_a_checkout_missing_the_library_texture_renders_differently(
        renders: dict[str, Path]) -> None:
    assert differing_pixels(renders["source-3"], renders["no-library-texture-3"]) > 10


def test_the_production_is_as_described(render_production: RenderProduction) -> None:
    prod = render_production
    assert (prod.frame_start, prod.frame_end, prod.fps_base) == (FRAME_START, FRAME_END,
                                                                  FPS_BASE)
    assert (prod.frame_start, prod.frame_end) != (1, 250) and prod.fps_base != 1
    assert prod.texture.parent != prod.blend.parent
    assert prod.library_texture.parent != prod.library.parent
    assert all(p.is_file() for p in prod.files)
    # (its paths are relative: the checkouts without a texture, whose source still has
    # it, render differently)


def test_render_frame_needs_jobs_in_the_path_to_replace(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="jobs"):
        render_frame(tmp_path / "a.blend", 1, tmp_path / "a.png", replace_jobs=tmp_path)


def test_render_frame_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="failed"):
        render_frame(tmp_path / "missing.blend", 1, tmp_path / "out.png")


# -- pixels, not bytes (no Blender) -------------------------------------------------------


def _png(rows: list[bytes], *, colour: int, level: int, filter_type: int = 0) -> bytes:
    width = len(rows[0]) // {2: 3, 6: 4}[colour]

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    raw = b""
    prev = bytes(len(rows[0]))
    for row in rows:
        if filter_type == 2:  # "up": each byte minus the one above
            raw += b"\x02" + bytes((a - b) & 0xFF for a, b in zip(row, prev, strict=True))
        else:
            raw += b"\x00" + row
        prev = row
    header = struct.pack(">IIBBBBB", width, len(rows), 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b""))


def test_pixels_equal_compares_pixels_not_bytes(tmp_path: Path) -> None:
    rgb = [bytes([10, 20, 30, 40, 50, 60]), bytes([70, 80, 90, 100, 110, 120])]
    rgba = [bytes([10, 20, 30, 255, 40, 50, 60, 255]), bytes([70, 80, 90, 255, 100, 110,
                                                              120, 255])]
    a = tmp_path / "a.png"
    b = tmp_path / "b.png"
    c = tmp_path / "c.png"
    d = tmp_path / "d.png"
    a.write_bytes(_png(rgb, colour=2, level=0))
    b.write_bytes(_png(rgb, colour=2, level=9, filter_type=2))
    c.write_bytes(_png(rgba, colour=6, level=6))
    d.write_bytes(_png([rgb[0], bytes([70, 80, 90, 100, 110, 121])], colour=2, level=6))
    assert a.read_bytes() != b.read_bytes()
    assert pixels_equal(a, b)
    assert pixels_equal(a, c)  # opaque RGBA is the same picture as RGB
    assert not pixels_equal(a, d)
    assert differing_pixels(a, d) == 1

