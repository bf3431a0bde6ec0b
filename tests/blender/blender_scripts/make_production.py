"""Build a tiny production with ``bpy``: ``OUT/project/shots/main.blend`` (the project
marked by ``OUT/project/.blender_project``) using
``OUT/project/textures/wall.png`` through a material, render output on shared storage.

    python make_production.py OUT [--missing] [--output PATH]

``--missing`` also references ``textures/gone.png``, which does not exist. Prints
``RESULT {json}`` with the paths.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bpy
from _harness import emit, png_bytes


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--missing", action="store_true")
    parser.add_argument("--output", default="/srv/farm/renders/main/")
    args = parser.parse_args()

    project = args.out.resolve() / "project"
    shots, textures = project / "shots", project / "textures"
    shots.mkdir(parents=True, exist_ok=True)
    (project / ".blender_project").mkdir(exist_ok=True)  # marks the project root
    textures.mkdir(parents=True, exist_ok=True)
    wall = textures / "wall.png"
    wall.write_bytes(png_bytes(16, 16, (30, 120, 200)))
    main = shots / "main.blend"

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.filepath = args.output
    mesh = bpy.data.meshes.new("plane")
    mesh.from_pydata([(-1, -1, 0), (1, -1, 0), (1, 1, 0), (-1, 1, 0)], [], [(0, 1, 2, 3)])
    obj = bpy.data.objects.new("plane", mesh)
    scene.collection.objects.link(obj)
    mat = bpy.data.materials.new("wall")
    mat.use_nodes = True
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image = bpy.data.images.load(str(wall))
    mesh.materials.append(mat)
    missing = []
    if args.missing:
        gone = bpy.data.images.new("gone", 4, 4)
        gone.source = "FILE"
        gone.filepath = str(textures / "gone.png")
        gone.use_fake_user = True
        missing.append(str(textures / "gone.png"))
    bpy.ops.wm.save_as_mainfile(filepath=str(main), relative_remap=True)
    emit(
        {
            "project": str(project),
            "main": str(main),
            "texture": str(wall),
            "missing": missing,
            "images": {i.name: i.filepath for i in bpy.data.images},
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
