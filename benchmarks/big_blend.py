"""A large real .blend for the memory benchmark of reading and rewriting (issue 13, item 3).

Run as a script (it imports ``bpy``, so in its own process)::

    .venv/bin/python benchmarks/big_blend.py OUTDIR [--grid N]

It writes ``OUTDIR/project/scene.blend`` (zstd, as Blender 5 saves): a grid mesh of N x N
faces with a noisy height (a few hundred MB uncompressed at the default N), an image on
an ABSOLUTE path inside the project (so the collector must rewrite the file to make the
path relative) and ``OUTDIR/project/tex/a.png``; then ``OUTDIR/done.json`` last, marking
it complete. From other code: ``build(cache)`` runs it once and reuses the result.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_GRID = 1500


def build(cache: Path, grid: int = DEFAULT_GRID) -> Path:
    """The big scene's path: from ``cache/big-blend-g<grid>/``, else generated now."""
    out = cache / f"big-blend-g{grid}"
    if not (out / "done.json").exists():
        subprocess.run([sys.executable, str(Path(__file__).resolve()), str(out), "--grid",
                        str(grid)], check=True, timeout=1800)
    return out / "project" / "scene.blend"


def _generate(out: Path, grid: int) -> None:
    import random

    import bpy

    project = out / "project"
    (project / ".blender_project").mkdir(parents=True, exist_ok=True)
    (project / "tex").mkdir(exist_ok=True)
    (project / "tex" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=grid, y_subdivisions=grid, size=10)
    mesh = bpy.context.active_object.data
    rng = random.Random(13)
    heights = [rng.random() for _ in range(len(mesh.vertices))]
    co = [0.0] * (3 * len(mesh.vertices))
    mesh.vertices.foreach_get("co", co)
    co[2::3] = heights
    mesh.vertices.foreach_set("co", co)
    uv = mesh.uv_layers.new(name="second")
    assert uv is not None
    img = bpy.data.images.new("tex", 4, 4)
    img.source = "FILE"
    img.filepath = str(project / "tex" / "a.png")  # absolute: the collector rewrites it
    img.use_fake_user = True
    bpy.ops.wm.save_as_mainfile(filepath=str(project / "scene.blend"), compress=True,
                                relative_remap=False)
    (out / "done.json").write_text(json.dumps({"grid": grid}))


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--grid", type=int, default=DEFAULT_GRID)
    args = parser.parse_args()
    _generate(args.outdir, args.grid)
