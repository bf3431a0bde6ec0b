"""Make a small real .blend that references chosen files: the bad-input cases need names
and places the production generator does not make (quotes, newlines, ``%``, symlinks,
a 5 GiB sparse file).

Run as a script (it imports ``bpy``, so in its own process)::

    .venv/bin/python tests/fault_blends.py SPEC.json

SPEC: ``{"blend": "/abs/main.blend", "images": ["//tex/a b.png", "/abs/x.exr", ...]}``;
each image data-block gets a fake user and keeps its path exactly as given. From tests,
``make_blend(blend, images)`` runs it in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def make_blend(blend: Path, images: list[str]) -> Path:
    """Write ``blend`` referencing ``images`` (paths as Blender should store them)."""
    spec = blend.with_name(blend.name + ".spec.json")
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(json.dumps({"blend": str(blend), "images": images}), "utf-8")
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(spec)],
                          capture_output=True, text=True, timeout=300)
    spec.unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"fault_blends failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return blend


def main(spec_path: str) -> int:
    import bpy

    spec = json.loads(Path(spec_path).read_text("utf-8"))
    blend = Path(spec["blend"])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blend.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=True, relative_remap=False)
    for i, filepath in enumerate(spec["images"]):
        img = bpy.data.images.new(f"img_{i:03d}", 4, 4)
        img.source = "FILE"
        img.filepath = filepath
        img.use_fake_user = True
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), compress=True, relative_remap=False)
    backup = blend.with_suffix(".blend1")
    if backup.exists():
        backup.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
