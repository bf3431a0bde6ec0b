"""A small production made to be RENDERED: what the render-job tests submit and compare.

Built by real Blender (``bpy``, in its own process: ``generate(outdir)``, about 2 s)::

    OUTDIR/project/                   the project root (holds a .blender_project folder)
      shots/shot.blend                camera, a sun and a point light, a world colour,
                                      a ground plane textured from ../textures/, a cube
                                      that moves and turns from frame 3 to 12, and the
                                      prop linked from ../libs/props.blend
      textures/ground.png             the ground's texture (a checker), its own folder
      libs/props.blend                collection PROPS: a textured prop
      libs/tex/prop.png               the prop's texture (stripes)

The scene: frames 3-12 (not Blender's 1-250), 24 fps with fps_base 1.001 (23.976 fps),
PNG output, 64x64, Cycles: every frame renders differently (the cube moves), and a
missing texture changes the picture (Blender draws it magenta). Every path in the files
is relative, so a checkout of the project renders the same from anywhere.

As a script: ``python tests/support/render_production.py OUTDIR``.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAME_START = 3
FRAME_END = 12
FPS = 24
FPS_BASE = 1.001
SCENE_NAME = "Shot"


@dataclass(frozen=True)
class RenderProduction:
    """Paths of a generated render production (absolute) and its scene's values."""

    root: Path
    project: Path
    blend: Path  # shots/shot.blend
    texture: Path  # textures/ground.png, used by shot.blend
    library: Path  # libs/props.blend, linked by shot.blend
    library_texture: Path  # libs/tex/prop.png, used by props.blend
    frame_start: int = FRAME_START
    frame_end: int = FRAME_END
    fps: int = FPS
    fps_base: float = FPS_BASE
    scene: str = SCENE_NAME

    @classmethod
    def at(cls, root: Path) -> RenderProduction:
        project = Path(root) / "project"
        return cls(root=Path(root), project=project, blend=project / "shots" / "shot.blend",
                   texture=project / "textures" / "ground.png",
                   library=project / "libs" / "props.blend",
                   library_texture=project / "libs" / "tex" / "prop.png")

    @property
    def files(self) -> list[Path]:
        """Every file a render needs: the .blend files and both textures."""
        return [self.blend, self.texture, self.library, self.library_texture]

    def copy_to(self, root: Path) -> RenderProduction:
        """A copy under ``root`` (to change or move without touching a shared one)."""
        shutil.copytree(self.project, Path(root) / "project", symlinks=True)
        return RenderProduction.at(root)


def generate(outdir: Path) -> RenderProduction:
    """Build the production in ``outdir`` with real Blender (one subprocess)."""
    from blendgen import bpy_python

    proc = subprocess.run([bpy_python(), str(Path(__file__).resolve()), str(outdir)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"render_production failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    production = RenderProduction.at(Path(outdir).resolve())
    missing = [p for p in production.files if not p.is_file()]
    if missing:
        raise RuntimeError(f"render_production did not write {missing}")
    return production


def png_pattern(width: int, height: int, colour: tuple[int, int, int],
                other: tuple[int, int, int], *, stripes: bool = False) -> bytes:
    """An RGB PNG: a checker of two colours (4-pixel cells), or vertical stripes."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            odd = (x // 4) % 2 if stripes else (x // 4 + y // 4) % 2
            row += bytes(other if odd else colour)
        rows.append(bytes(row))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


# -- the part that runs inside Blender -----------------------------------------------------


def _save(bpy, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=True, relative_remap=False)
    backup = path.with_suffix(".blend1")
    if backup.exists():
        backup.unlink()


def _new_file(bpy, path: Path) -> None:
    """An empty file saved once, so ``//`` paths are relative to its folder."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    _save(bpy, path)


def _material(bpy, name: str, image_path: str | None, colour: tuple[float, ...]):
    import warnings

    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            mat.use_nodes = True
    tree = mat.node_tree
    bsdf = tree.nodes.get("Principled BSDF")
    bsdf.inputs["Base Color"].default_value = colour
    if image_path is not None:
        tex = tree.nodes.new("ShaderNodeTexImage")
        tex.interpolation = "Closest"
        tex.image = bpy.data.images.load(bpy.path.abspath(image_path))
        tex.image.filepath = image_path  # kept relative: a checkout renders from anywhere
        tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _plane(bpy, name: str, size: float, mat, collection):
    mesh = bpy.data.meshes.new(name)
    s = size / 2
    mesh.from_pydata([(-s, -s, 0), (s, -s, 0), (s, s, 0), (-s, s, 0)], [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new()
    for i, co in enumerate([(0, 0), (1, 0), (1, 1), (0, 1)]):
        uv.data[i].uv = co
    mesh.materials.append(mat)
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    return obj


def _cube(bpy, name: str, mat, collection):
    import bmesh

    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=1.0)
    bm.to_mesh(mesh)
    bm.free()
    mesh.materials.append(mat)
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    return obj


def _build_library(bpy, production: RenderProduction) -> None:
    _new_file(bpy, production.library)
    coll = bpy.data.collections.new("PROPS")
    mat = _material(bpy, "MAT_prop", "//tex/prop.png", (1, 1, 1, 1))
    prop = _plane(bpy, "prop", 1.4, mat, coll)
    prop.location = (1.2, 1.0, 0.9)
    prop.rotation_euler = (math.radians(70), 0, math.radians(-20))
    coll.use_fake_user = True
    _save(bpy, production.library)


def _build_shot(bpy, production: RenderProduction) -> None:
    _new_file(bpy, production.blend)
    scene = bpy.context.scene
    scene.name = SCENE_NAME
    root = scene.collection
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    cam.location = (0, -6, 5)
    cam.rotation_euler = (math.atan2(6, 5), 0, 0)
    root.objects.link(cam)
    scene.camera = cam
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.data.energy = 3.0
    sun.rotation_euler = (math.radians(40), math.radians(20), 0)
    root.objects.link(sun)
    lamp = bpy.data.objects.new("Lamp", bpy.data.lights.new("Lamp", "POINT"))
    lamp.data.energy = 400.0
    lamp.location = (-2, -2, 3)
    root.objects.link(lamp)
    world = bpy.data.worlds.new("World")
    world.color = (0.05, 0.05, 0.08)
    scene.world = world
    ground = _material(bpy, "MAT_ground", "//../textures/ground.png", (1, 1, 1, 1))
    _plane(bpy, "ground", 5.0, ground, root)
    cube = _cube(bpy, "mover", _material(bpy, "MAT_mover", None, (0.8, 0.1, 0.1, 1)), root)
    for frame, x, turn in ((FRAME_START, -1.6, 0.0), (FRAME_END, 1.6, 90.0)):
        cube.location = (x, -0.5, 0.5)
        cube.rotation_euler = (0, 0, math.radians(turn))
        cube.keyframe_insert("location", frame=frame)
        cube.keyframe_insert("rotation_euler", frame=frame)
    with bpy.data.libraries.load("//../libs/props.blend", link=True, relative=True) as (
            _src, dst):
        dst.collections = ["PROPS"]
    root.children.link(dst.collections[0])
    render = scene.render
    scene.frame_start, scene.frame_end = FRAME_START, FRAME_END
    scene.frame_current = FRAME_START
    render.fps, render.fps_base = FPS, FPS_BASE
    render.resolution_x = render.resolution_y = 64
    render.engine = "CYCLES"
    scene.cycles.samples = 8
    render.image_settings.file_format = "PNG"
    render.filepath = "//render/shot_####"
    _save(bpy, production.blend)


def main(outdir: str) -> int:
    import bpy

    production = RenderProduction.at(Path(outdir).resolve())
    if production.project.exists():
        shutil.rmtree(production.project)
    (production.project / ".blender_project").mkdir(parents=True)
    for path, data in (
            (production.texture, png_pattern(16, 16, (230, 200, 60), (40, 90, 200))),
            (production.library_texture,
             png_pattern(16, 16, (30, 180, 90), (240, 240, 240), stripes=True))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    _build_library(bpy, production)  # first: the shot links it
    _build_shot(bpy, production)
    info = {k: str(v) for k, v in vars(production).items()}
    (production.root / "render-production.json").write_text(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
