"""Render a frame of a .blend in real Blender and compare pictures by their pixels.

For the end-to-end render-job test: a job's ``blendfile`` (``{jobs}/<checkout>/...``),
opened from the checkout alone, must render frame N exactly as the artist's own file
does. ``render_frame`` renders one frame at 64x64 with Cycles on the CPU (8 samples,
seed 0 and not animated, no denoising, no adaptive sampling): the same file and frame
give the same pixels on one machine, from any process. The file is opened as it is,
from the path given (a checkout's symlink stays a path in the checkout folder, so its
``//`` paths resolve there, as on a worker); only these render settings are set, and
the frame is written as an 8-bit RGBA PNG. A missing texture still renders (magenta), so
a checkout that lacks a file renders differently: compare with ``pixels_equal``.

``render_frames`` renders several (file, frame, png) in ONE Blender process: Blender's
start costs 1-2 s, a 64x64 frame a fraction of that.

As a script: ``python tests/support/render_compare.py SPEC.json`` (what the functions
run): the spec lists ``[blend, frame, png]`` triples.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path

SIZE = 64
SAMPLES = 8
SEED = 0
JOBS_VARIABLE = "{jobs}"


def render_frame(blend: Path, frame: int, out_png: Path, *,
                 replace_jobs: Path | None = None) -> Path:
    """Render ``frame`` of ``blend`` to ``out_png`` (one Blender process); the PNG.

    ``replace_jobs``: ``blend`` is a job's ``blendfile`` setting, and ``{jobs}`` in it
    stands for this folder (the Manager's jobs folder, where checkouts are made).
    """
    return render_frames([(blend, frame, out_png)], replace_jobs=replace_jobs)[0]


def render_frames(shots: Sequence[tuple[Path, int, Path]], *,
                  replace_jobs: Path | None = None) -> list[Path]:
    """Render every ``(blend, frame, out_png)`` in order, in ONE Blender process."""
    from blendgen import bpy_python

    spec = []
    for blend, frame, out in shots:
        spec.append([str(_resolve_jobs(blend, replace_jobs)), int(frame),
                     str(Path(out).absolute())])
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
    spec_file = Path(handle.name)
    try:
        proc = subprocess.run([bpy_python(), str(Path(__file__).resolve()), str(spec_file)],
                              capture_output=True, text=True, timeout=600)
    finally:
        spec_file.unlink()
    outs = [Path(out) for _b, _f, out in spec]
    if proc.returncode != 0 or not all(p.is_file() for p in outs):
        raise RuntimeError(f"rendering {spec} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return outs


def _resolve_jobs(blend: Path | str, jobs: Path | None) -> Path:
    text = str(blend)
    if jobs is None:
        return Path(text)
    if not text.startswith(JOBS_VARIABLE):
        raise ValueError(f"{text!r} does not start with {JOBS_VARIABLE}")
    return Path(str(jobs) + text[len(JOBS_VARIABLE):])


# -- comparing pictures -------------------------------------------------------------------


def decode_png(path: Path) -> tuple[int, int, list[tuple[int, ...]]]:
    """(width, height, pixels as RGBA tuples) of a non-interlaced PNG, any colour type,
    bit depth 8 or 16 (standard library only)."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    pos, idat, palette = 8, b"", b""
    width = height = depth = colour = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if tag == b"IHDR":
            width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", body)
            if interlace or depth not in (8, 16):
                raise ValueError(f"{path}: interlaced or {depth}-bit PNG not supported")
        elif tag == b"PLTE":
            palette = body
        elif tag == b"IDAT":
            idat += body
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    step = channels * depth // 8
    raw = _unfilter(zlib.decompress(idat), width * step, height, step)
    top = 255 if depth == 8 else 65535
    pixels: list[tuple[int, ...]] = []
    for i in range(width * height):
        chunk = raw[i * step:(i + 1) * step]
        values = list(chunk) if depth == 8 else [
            chunk[k] << 8 | chunk[k + 1] for k in range(0, len(chunk), 2)]
        if colour == 3:
            values = [*palette[values[0] * 3:values[0] * 3 + 3], 255]
        elif colour in (0, 4):
            values = [values[0]] * 3 + values[1:]
        if len(values) == 3:
            values.append(top)
        pixels.append(tuple(values))
    return width, height, pixels


def _unfilter(data: bytes, stride: int, height: int, bpp: int) -> bytes:
    out = bytearray()
    prev = bytearray(stride)
    for y in range(height):
        kind = data[y * (stride + 1)]
        row = bytearray(data[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = row[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                row[x] = (row[x] + a) & 0xFF
            elif kind == 2:
                row[x] = (row[x] + b) & 0xFF
            elif kind == 3:
                row[x] = (row[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[x] = (row[x] + pred) & 0xFF
        out += row
        prev = row
    return bytes(out)


def differing_pixels(a: Path, b: Path) -> int:
    """How many pixels differ (every pixel when the sizes differ)."""
    wa, ha, pa = decode_png(a)
    wb, hb, pb = decode_png(b)
    if (wa, ha) != (wb, hb):
        return max(wa * ha, wb * hb)
    return sum(1 for x, y in zip(pa, pb, strict=True) if x != y)


def pixels_equal(a: Path, b: Path) -> bool:
    """The two pictures have the same size and the same decoded pixels (not bytes)."""
    return differing_pixels(a, b) == 0


# -- the part that runs inside Blender -----------------------------------------------------


def _render_settings(scene) -> None:
    render = scene.render
    render.engine = "CYCLES"
    cycles = scene.cycles
    cycles.device = "CPU"
    cycles.samples = SAMPLES
    cycles.seed = SEED
    cycles.use_animated_seed = False
    cycles.use_denoising = False
    cycles.use_adaptive_sampling = False
    render.resolution_x = render.resolution_y = SIZE
    render.resolution_percentage = 100
    render.use_border = False
    render.use_sequencer = False
    settings = render.image_settings
    settings.file_format = "PNG"
    settings.color_mode = "RGBA"
    settings.color_depth = "8"


def main(spec_file: str) -> int:
    import bpy

    shots = json.loads(Path(spec_file).read_text())
    for blend, frame, out in shots:
        bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
        scene = bpy.context.scene
        _render_settings(scene)
        scene.frame_set(frame)
        bpy.ops.render.render(scene=scene.name)
        # Saved by name: a render's own output path would gain the frame's number.
        bpy.data.images["Render Result"].save_render(filepath=out, scene=scene)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
