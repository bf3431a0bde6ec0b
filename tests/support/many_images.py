"""A .blend holding many image data-blocks, each on its own small file (run by bpy).

    python tests/support/many_images.py OUTDIR COUNT

Writes ``OUTDIR/project/main.blend`` (zstd, as Blender saves by default) with COUNT images
on ``//tex/dNNN/t_NNNNNN.png`` (500 to a folder, each file a few bytes), then
``OUTDIR/done.json``. Used by the tracing-memory test and the large-shot benchmark:
tracing cost grows with the number of data-blocks, not with their bytes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def generate(out: Path, count: int) -> Path:
    import bpy

    project = out / "project"
    (project / ".blender_project").mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    for i in range(count):
        rel = f"tex/d{i // 500:03d}/t_{i:06d}.png"
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + str(i).encode())
        img = bpy.data.images.new(f"img_{i:06d}", 4, 4)
        img.source = "FILE"
        img.filepath = "//" + rel
        img.use_fake_user = True
    blend = project / "main.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=True, relative_remap=False)
    (out / "done.json").write_text(json.dumps({"images": count}))
    return blend


if __name__ == "__main__":
    generate(Path(sys.argv[1]), int(sys.argv[2]))
