"""Build real test productions with ``bpy``: a main .blend, linked libraries, every kind
of dependency file, at a chosen size.

Run it as a script (it imports ``bpy``, so it runs in its own process)::

    .venv/bin/python tests/blendgen.py OUTDIR [--libraries N] [--files N] [--total-mb N]
                                              [--kinds all|basic] [--seed S]
                                              [--main-images N]

or from tests with ``generate(outdir, ...) -> ProductionInfo``, which runs the script in a
subprocess (``bpy`` can be imported once per process only) and reads back the
``production.json`` it writes.

What it builds under OUTDIR::

    project/                         the project root (holds a .blender_project folder)
      shots/main.blend               the main file (zstd, as Blender 5 saves), linking
                                     collection LIB_i from each library and rendering them
      libs/lib_NN.blend              N libraries; each has a plane with its own texture
                                     libs/textures/lib_NN color.png; lib_00 links
      libs/chain/base.blend          the second level of the chain, with its own texture
                                     libs/chain/tex/base color.png and the outside texture
      bulk/<owner>/dNN/tex_NNNNN.png --files N extra image files (bytes up to --total-mb),
                                     referenced by images with a fake user in main and libs
                                     (an equal share each, or --main-images N in main)
    outside/shared textures/ground ü.png   a texture outside the project (absolute path)

With ``--kinds all`` main.blend also references: PNG/JPG/EXR images (unicode and space
names, absolute paths, ``..`` paths, a path set with backslashes (Blender stores it with
slashes; see test_collect_cases for a real one), the same name in two folders, two names
differing only in case), a UDIM set, an image sequence, a movie (as image, movie clip and
strip), a movie clip from an image sequence, image/movie/sound sequencer strips, a sound,
a font, IES profiles (light and material), an external OSL script, a mesh-cache (PC2)
file, Alembic and USD cache files, an OpenVDB volume and a volume sequence, a cloth point
cache in ``//blendcache_main/``, a fluid cache folder, a geometry-nodes bake folder, a text
block on an external file, geometry-nodes Import OBJ/CSV nodes. Not files to send: a
packed image, a generated image, the ``<builtin>`` font, a font and a linked library (the
essentials) inside Blender's own installation. Caches and bakes hold plausible files
(Blender never reads them: their objects are not in the rendered scene).

``production.json`` lists: the main file, the libraries, every file the pack plan must
hold (``expected_files``), files by kind (``kinds``) and what must not be sent
(``not_files``). ``--edge-cases`` builds the corner-case files instead (see
``EdgeCases``).

Only a few images are real pictures (the ones the render uses); bulk files have a PNG
signature and unique random bytes, since Blender only needs their paths. Everything is
deterministic for a given ``--seed``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAIN_NAME = "main.blend"


def bpy_python() -> str:
    """The Python that has bpy: ``$SHAMAN_BPY_PYTHON`` (e.g. Blender 4.2's) or this one."""
    return os.environ.get("SHAMAN_BPY_PYTHON") or sys.executable


def strips_of(editor):
    """Sequencer strips: ``strips`` since Blender 4.4, ``sequences`` before."""
    return editor.strips if hasattr(editor, "strips") else editor.sequences


@dataclass
class ProductionInfo:
    """Paths of a generated production (all absolute)."""

    root: Path
    project_root: Path
    main_blend: Path
    libraries: list[Path]
    expected_files: list[Path]  # every file the pack plan must hold, the main .blend included
    outside_files: list[Path]
    kinds: dict[str, list[Path]] = field(default_factory=dict)  # kind -> files of that kind
    not_files: dict[str, str] = field(default_factory=dict)  # what must NOT be sent

    @classmethod
    def load(cls, outdir: Path) -> ProductionInfo:
        data = json.loads((outdir / "production.json").read_text("utf-8"))
        return cls(
            root=Path(data["root"]),
            project_root=Path(data["project_root"]),
            main_blend=Path(data["main_blend"]),
            libraries=[Path(p) for p in data["libraries"]],
            expected_files=[Path(p) for p in data["expected_files"]],
            outside_files=[Path(p) for p in data["outside_files"]],
            kinds={k: [Path(p) for p in v] for k, v in data["kinds"].items()},
            not_files=dict(data["not_files"]),
        )


def generate(
    outdir: Path,
    *,
    libraries: int = 2,
    files: int = 0,
    total_bytes: int = 0,
    kinds: str = "all",
    seed: int = 0,
    main_images: int | None = None,
) -> ProductionInfo:
    """Build a production in ``outdir`` (runs bpy in a subprocess) and describe it.

    Against another server (``SHAMAN_TEST_CONTENT_SALT``, set by the server fixtures)
    the seed is mixed with the salt and ``outdir``, so each production's contents are new
    to a store that earlier tests and runs filled."""
    salt = os.environ.get("SHAMAN_TEST_CONTENT_SALT", "")
    if salt:
        mixed = f"{salt}-{seed}-{Path(outdir).resolve()}"
        seed = int(hashlib.sha256(mixed.encode()).hexdigest()[:12], 16)
    cmd = [
        bpy_python(),
        str(HERE / "blendgen.py"),
        str(outdir),
        "--libraries",
        str(libraries),
        "--files",
        str(files),
        "--total-bytes",
        str(total_bytes),
        "--kinds",
        kinds,
        "--seed",
        str(seed),
    ]
    if main_images is not None:
        cmd += ["--main-images", str(main_images)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(
            f"blendgen failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return ProductionInfo.load(Path(outdir))


# --------------------------------------------------------------------------- file bytes


def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real, solid-colour RGB PNG (no bpy needed, so it is cheap)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def wav_bytes(frames: int = 800) -> bytes:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", (i * 997) % 20000 - 10000) for i in range(frames)))
    return buf.getvalue()


IES_TEXT = """IESNA:LM-63-2002
[TEST] generated
TILT=NONE
1 1000 1 5 1 1 2 0.1 0.1 0
1 1 100
0 22.5 45 67.5 90
0
1000 900 600 300 0
"""


class Bulk:
    """Cheap unique file contents: a PNG signature, a counter, then shared random bytes."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pool = self.rng.randbytes(1 << 20)

    def data(self, index: int, size: int) -> bytes:
        head = b"\x89PNG\r\n\x1a\n" + f"bulk file {index}\n".encode()
        if size <= len(head):
            return head
        body_len = size - len(head)
        start = self.rng.randrange(len(self.pool))
        pool2 = self.pool[start:] + self.pool[:start]
        reps = body_len // len(pool2) + 1
        return head + (pool2 * reps)[:body_len]


def bulk_shares(files: int, libraries: int, main_images: int | None = None) -> list[int]:
    """How many bulk images each file holds: main first, then each library.

    By default every file gets an equal share and main the remainder; ``main_images``
    puts that many in main (capped at ``files``; all of them without libraries) and
    splits the rest equally over the libraries, the remainder to the first ones."""
    owners = 1 + libraries
    if main_images is None or not libraries:
        share = [files // owners] * owners
        share[0] += files - sum(share)
        return share
    main = min(max(main_images, 0), files)
    rest = files - main
    return [main] + [rest // libraries + (1 if i < rest % libraries else 0)
                     for i in range(libraries)]


# --------------------------------------------------------------------------- bpy side


class Builder:
    """Everything that needs bpy; one instance per generator process."""

    def __init__(self, outdir: Path, args: argparse.Namespace) -> None:
        import bpy

        self.bpy = bpy
        self.out = outdir
        self.args = args
        self.project = outdir / "project"
        self.outside = outdir / "outside"
        self.expected: set[Path] = set()
        self.kinds: dict[str, list[Path]] = {}
        self.not_files: dict[str, str] = {}
        self.rng = random.Random(args.seed)

    # -- helpers
    def add(self, kind: str, *paths: Path) -> None:
        for p in paths:
            self.expected.add(p)
            self.kinds.setdefault(kind, []).append(p)

    def rel(self, blend: Path, target: Path) -> str:
        return "//" + os.path.relpath(target, blend.parent).replace(os.sep, "/")

    def new_file(self, path: Path) -> None:
        """Start an empty file and save it once, so ``//`` paths resolve against it."""
        bpy = self.bpy
        bpy.ops.wm.read_factory_settings(use_empty=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=True, relative_remap=False)

    def save(self, path: Path) -> None:
        self.bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=True, relative_remap=False)
        backup = path.with_suffix(".blend1")  # Blender's backup of the previous save
        if backup.exists():
            backup.unlink()

    def image(self, name: str, filepath: str, source: str = "FILE"):
        img = self.bpy.data.images.new(name, 4, 4)
        img.source = source
        img.filepath = filepath
        return img

    @staticmethod
    def nodes_of(idb):
        """The node tree of a material/world/light, made if needed (``use_nodes`` is
        deprecated in Blender 5 but still creates the tree for lights)."""
        if idb.node_tree is None:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                idb.use_nodes = True
        return idb.node_tree

    def textured_material(self, name: str, images: list):
        bpy = self.bpy
        mat = bpy.data.materials.new(name)
        nt = self.nodes_of(mat)
        bsdf = nt.nodes.get("Principled BSDF")
        prev = None
        for img in images:
            tex = nt.nodes.new("ShaderNodeTexImage")
            tex.image = img
            if prev is None:
                prev = tex.outputs["Color"]
            else:
                mix = nt.nodes.new("ShaderNodeMix")
                mix.data_type = "RGBA"
                mix.inputs["Factor"].default_value = 0.5
                nt.links.new(prev, mix.inputs[6])
                nt.links.new(tex.outputs["Color"], mix.inputs[7])
                prev = mix.outputs[2]
        if prev is not None:
            nt.links.new(prev, bsdf.inputs["Base Color"])
        return mat

    def plane(self, name: str, mat, location, collection):
        bpy = self.bpy
        mesh = bpy.data.meshes.new(name)
        s = 0.9
        mesh.from_pydata([(-s, -s, 0), (s, -s, 0), (s, s, 0), (-s, s, 0)], [], [(0, 1, 2, 3)])
        uv = mesh.uv_layers.new()
        for i, co in enumerate([(0, 0), (1, 0), (1, 1), (0, 1)]):
            uv.data[i].uv = co
        mesh.materials.append(mat)
        obj = bpy.data.objects.new(name, mesh)
        obj.location = location
        collection.objects.link(obj)
        return obj

    def bulk_images(self, blend: Path, owner: str, count: int, first_index: int, sizes: list[int]):
        """``count`` image data-blocks with a fake user, each on its own file."""
        for i in range(count):
            idx = first_index + i
            path = self.project / "bulk" / owner / f"d{idx // 200:02d}" / f"tex_{idx:05d}.png"
            write(path, self.bulk.data(idx, sizes[idx]))
            img = self.image(f"bulk_{idx:05d}", self.rel(blend, path))
            img.use_fake_user = True
            self.add("bulk", path)

    # -- the files
    def build(self) -> None:
        args = self.args
        (self.project / ".blender_project").mkdir(parents=True, exist_ok=True)
        self.bulk = Bulk(args.seed)
        n_bulk = args.files
        if n_bulk:
            per = max(args.total_bytes // n_bulk, 16) if args.total_bytes else 64
            sizes = [per + self.rng.randrange(0, 9) for _ in range(n_bulk)]
        else:
            sizes = []
        owners = ["main"] + [f"lib_{i:02d}" for i in range(args.libraries)]
        share = bulk_shares(n_bulk, args.libraries, args.main_images)
        self.bulk_plan = {o: (sum(share[:k]), share[k]) for k, o in enumerate(owners)}
        self.sizes = sizes

        outside_tex = write(
            self.outside / "shared textures" / "ground ü.png", png_bytes(8, 8, (40, 160, 60))
        )
        self.outside_tex = outside_tex
        self.add("outside", outside_tex)

        base = self.build_base() if args.libraries else None
        libs = [self.build_library(i, base) for i in range(args.libraries)]
        main = self.project / "shots" / MAIN_NAME
        self.build_main(main, libs)
        self.expected.add(main)
        for lib in libs + ([base] if base else []):
            self.expected.add(lib)
        info = {
            "root": str(self.out),
            "project_root": str(self.project),
            "main_blend": str(main),
            "libraries": [str(p) for p in ([base] if base else []) + libs],
            "expected_files": sorted(str(p) for p in self.expected),
            "outside_files": [str(outside_tex)],
            "kinds": {k: sorted(str(p) for p in set(v)) for k, v in sorted(self.kinds.items())},
            "not_files": self.not_files,
        }
        (self.out / "production.json").write_text(json.dumps(info, indent=1), "utf-8")

    def build_base(self) -> Path:
        bpy = self.bpy
        path = self.project / "libs" / "chain" / "base.blend"
        self.new_file(path)
        tex = write(path.parent / "tex" / "base color.png", png_bytes(8, 8, (200, 40, 40)))
        self.add("library texture", tex)
        coll = bpy.data.collections.new("BASE")
        img = self.image("base color", self.rel(path, tex))
        ground = self.image("ground", str(self.outside_tex))  # absolute, outside the project
        mat = self.textured_material("MAT_base", [img, ground])
        self.plane("base_plane", mat, (0.4, 0.4, 0.3), coll).scale = (0.5, 0.5, 1)
        coll.use_fake_user = True
        self.save(path)
        return path

    def build_library(self, i: int, base: Path | None) -> Path:
        bpy = self.bpy
        path = self.project / "libs" / f"lib_{i:02d}.blend"
        self.new_file(path)
        tex = write(
            self.project / "libs" / "textures" / f"lib_{i:02d} color.png",
            png_bytes(8, 8, ((50 + 37 * i) % 256, (90 + 71 * i) % 256, 200)),
        )
        self.add("library texture", tex)
        coll = bpy.data.collections.new(f"LIB_{i:02d}")
        img = self.image(f"lib_{i:02d} color", self.rel(path, tex))
        mat = self.textured_material(f"MAT_{i:02d}", [img])
        self.plane(f"lib_plane_{i:02d}", mat, (0, 0, 0), coll)
        if i == 0 and base is not None:
            with bpy.data.libraries.load(self.rel(path, base), link=True, relative=True) as (
                _src,
                dst,
            ):
                dst.collections = ["BASE"]
            coll.children.link(dst.collections[0])
            self.add("library chain", base)
        if self.args.kinds == "all" and i == 0:
            # A world and a light with textures inside a library.
            wtex = write(path.parent / "textures" / "lib world.png", png_bytes(4, 4, (9, 9, 30)))
            world = bpy.data.worlds.new("LIB_WORLD")
            world.use_fake_user = True
            env = self.nodes_of(world).nodes.new("ShaderNodeTexEnvironment")
            env.image = self.image("lib world", self.rel(path, wtex))
            self.add("library world texture", wtex)
        start, count = self.bulk_plan[f"lib_{i:02d}"]
        self.bulk_images(path, f"lib_{i:02d}", count, start, self.sizes)
        coll.use_fake_user = True
        self.save(path)
        return path

    def build_main(self, main: Path, libs: list[Path]) -> None:
        bpy = self.bpy
        self.new_file(main)
        scene = bpy.context.scene
        scene.name = "Scene"
        root = scene.collection
        # camera looking down at a row of planes
        cam_data = bpy.data.cameras.new("Camera")
        cam_data.type = "ORTHO"
        cam_data.ortho_scale = 11.0
        cam = bpy.data.objects.new("Camera", cam_data)
        cam.location = (0, -1, 12)
        root.objects.link(cam)
        scene.camera = cam
        sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
        sun.location = (0, 0, 5)
        root.objects.link(sun)
        scene.render.resolution_x = 64
        scene.render.resolution_y = 64

        for i, lib in enumerate(libs):
            with bpy.data.libraries.load(self.rel(main, lib), link=True, relative=True) as (
                _src,
                dst,
            ):
                dst.collections = [f"LIB_{i:02d}"]
            inst = bpy.data.objects.new(f"inst_{i:02d}", None)
            inst.instance_type = "COLLECTION"
            inst.instance_collection = dst.collections[0]
            inst.location = ((i % 5) * 2 - 4, (i // 5) * 2 - 2, 0)
            root.objects.link(inst)
            self.add("library", lib)

        ground = self.image("ground", str(self.outside_tex))
        mat = self.textured_material("MAT_ground", [ground])
        ground_plane = self.plane("ground_plane", mat, (0, -1, -1), root)
        ground_plane.scale = (7, 7, 1)

        if self.args.kinds == "all":
            self.build_all_kinds(main, scene)

        start, count = self.bulk_plan["main"]
        self.bulk_images(main, "main", count, start, self.sizes)
        self.save(main)

    def build_all_kinds(self, main: Path, scene) -> None:
        bpy = self.bpy
        proj = self.project
        tex = proj / "textures"
        root = scene.collection
        hidden = bpy.data.collections.new("NOT_RENDERED")  # in the file, not in the scene
        hidden.use_fake_user = True

        # -- images: PNG (unicode + space), JPG, EXR; absolute; '..'; backslashes
        png = write(tex / "wood planks ü.png", png_bytes(8, 8, (150, 110, 60)))
        img_png = self.image("wood", self.rel(main, png))
        self.add("image png", png)
        jpg_path = tex / "café.jpg"
        exr_path = tex / "sky.exr"
        for p, fmt in ((jpg_path, "JPEG"), (exr_path, "OPEN_EXR")):
            gen = bpy.data.images.new(p.stem, 8, 8, float_buffer=(fmt == "OPEN_EXR"))
            gen.generated_color = (0.3, 0.5, 0.7, 1.0)
            gen.filepath_raw = str(p)
            gen.file_format = fmt
            gen.save()
            bpy.data.images.remove(gen)
        img_jpg = self.image("cafe", self.rel(main, jpg_path))
        img_exr = self.image("sky", self.rel(main, exr_path))
        self.add("image jpg", jpg_path)
        self.add("image exr", exr_path)
        abs_inside = write(tex / "absolute inside.png", png_bytes(4, 4, (1, 2, 3)))
        self.image("absolute inside", str(abs_inside)).use_fake_user = True
        self.add("absolute path", abs_inside)
        dotdot = write(tex / "dotdot.png", png_bytes(4, 4, (3, 2, 1)))
        self.image("dotdot", "//../textures/../textures/dotdot.png").use_fake_user = True
        self.add("dotdot path", dotdot)
        same_a = write(tex / "a" / "tile.png", png_bytes(4, 4, (10, 20, 30)))
        same_b = write(tex / "b" / "tile.png", png_bytes(4, 4, (30, 20, 10)))
        self.image("tile a", self.rel(main, same_a)).use_fake_user = True
        self.image("tile b", "//..\\textures\\b\\tile.png").use_fake_user = True  # backslashes
        self.add("same name", same_a, same_b)
        self.add("backslash path", same_b)
        case_1 = write(tex / "Case.png", png_bytes(4, 4, (1, 1, 1)))
        case_2 = write(tex / "case.png", png_bytes(4, 4, (2, 2, 2)))
        self.image("Case", self.rel(main, case_1)).use_fake_user = True
        self.image("case", self.rel(main, case_2)).use_fake_user = True
        self.add("case collision", case_1, case_2)

        # -- UDIM: three tiles on disk
        udim_files = []
        for n, c in ((1001, (200, 200, 0)), (1002, (0, 200, 200)), (1011, (200, 0, 200))):
            udim_files.append(write(tex / "udim" / f"skin.{n}.png", png_bytes(8, 8, c)))
        udim = bpy.data.images.new("skin", 8, 8, tiled=True)
        udim.tiles.new(1002)
        udim.tiles.new(1011)
        udim.source = "TILED"
        udim.filepath = self.rel(main, tex / "udim" / "skin.<UDIM>.png")
        self.add("udim", *udim_files)

        # -- image sequence (5 frames)
        seq = [
            write(tex / "seq" / f"frame_{f:04d}.png", png_bytes(4, 4, (f * 40, 0, 0)))
            for f in range(1, 6)
        ]
        img_seq = self.image("frames", self.rel(main, seq[0]), source="SEQUENCE")
        img_seq.use_fake_user = True
        self.add("image sequence", *seq)

        # rendered: a plane with PNG, JPG, EXR and UDIM mixed
        mat = self.textured_material("MAT_kinds", [img_png, img_jpg, img_exr, udim])
        self.plane("kinds_plane", mat, (4, -4, 0), root)

        # -- movie: file made by Blender's own ffmpeg from the sequence frames
        movie = self.make_movie(proj / "media" / "clip.mp4", seq[:3])
        self.add("movie", movie)
        img_movie = self.image("clip image", self.rel(main, movie), source="MOVIE")
        img_movie.use_fake_user = True
        clip = bpy.data.movieclips.load(self.rel(main, movie))
        clip.use_fake_user = True
        self.add("movie clip", movie)
        clip_seq = [
            write(proj / "media" / "clip seq" / f"shot_{f:03d}.png", png_bytes(4, 4, (0, f, 0)))
            for f in range(1, 4)
        ]
        clip2 = bpy.data.movieclips.load(self.rel(main, clip_seq[0]))
        clip2.use_fake_user = True
        self.add("movie clip sequence", *clip_seq)

        # -- sound
        wav = write(proj / "audio" / "beep.wav", wav_bytes())
        snd = bpy.data.sounds.load(self.rel(main, wav))
        snd.use_fake_user = True
        self.add("sound", wav)

        # -- sequencer strips: image (sequence), movie, sound
        strip_frames = [
            write(proj / "edit" / "strip frames" / f"s_{f:04d}.png", png_bytes(4, 4, (0, 0, f)))
            for f in range(1, 4)
        ]
        strip_wav = write(proj / "edit" / "strip sound.wav", wav_bytes(400))
        ed = scene.sequence_editor_create()
        st = strips_of(ed).new_image("img strip", self.rel(main, strip_frames[0]), 1, 1)
        for f in strip_frames[1:]:
            st.elements.append(f.name)
        strips_of(ed).new_movie("movie strip", self.rel(main, movie), 2, 1)
        self.add("strip image", *strip_frames)
        self.add("strip movie", movie)
        try:
            strips_of(ed).new_sound("sound strip", self.rel(main, strip_wav), 3, 1)
            self.add("strip sound", strip_wav)
        except RuntimeError:  # a bpy built without audio (the bpy 4.2 wheel)
            strip_wav.unlink()

        # -- fonts: a file, <builtin>, and one inside Blender's installation
        fonts_dir = Path(bpy.utils.system_resource("DATAFILES", path="fonts"))
        font_src = sorted(fonts_dir.glob("*.woff2"))[0]
        font = write(proj / "fonts" / "title font.woff2", font_src.read_bytes())
        vf = bpy.data.fonts.load(self.rel(main, font))
        curve = bpy.data.curves.new("title", "FONT")
        curve.font = vf
        hidden.objects.link(bpy.data.objects.new("title", curve))
        self.add("font", font)
        builtin_curve = bpy.data.curves.new("builtin", "FONT")  # gets the <builtin> font
        hidden.objects.link(bpy.data.objects.new("builtin text", builtin_curve))
        inst_font = bpy.data.fonts.load(str(font_src))
        inst_font.use_fake_user = True
        self.not_files["font inside Blender"] = str(font_src)
        essentials = Path(
            bpy.utils.system_resource(
                "DATAFILES", path="assets/nodes/geometry_nodes_essentials.blend"
            )
        )
        if essentials.is_file():  # a library inside Blender's installation
            with bpy.data.libraries.load(str(essentials), link=True) as (src, dst):
                dst.node_groups = sorted(src.node_groups)[:1]
            dst.node_groups[0].use_fake_user = True
            self.not_files["library inside Blender"] = str(essentials)

        # -- IES: on a light and in a material
        ies = write(proj / "ies" / "spot light.ies", IES_TEXT.encode())
        ies2 = write(proj / "ies" / "material.ies", IES_TEXT.encode() + b"\n")
        light = bpy.data.lights.new("IES light", "POINT")
        node = self.nodes_of(light).nodes.new("ShaderNodeTexIES")
        node.mode = "EXTERNAL"
        node.filepath = self.rel(main, ies)
        hidden.objects.link(bpy.data.objects.new("IES light", light))
        ies_mat = bpy.data.materials.new("IES material")
        ies_mat.use_fake_user = True
        node2 = self.nodes_of(ies_mat).nodes.new("ShaderNodeTexIES")
        node2.mode = "EXTERNAL"
        node2.filepath = self.rel(main, ies2)
        self.add("ies light", ies)
        self.add("ies material", ies2)
        osl = write(proj / "shaders" / "stripes.osl", b"shader stripes(output color C = 0) {}\n")
        script = self.nodes_of(ies_mat).nodes.new("ShaderNodeScript")
        script.mode = "EXTERNAL"
        script.filepath = self.rel(main, osl)
        self.add("osl script", osl)

        # -- Alembic and USD (real files, exported by Blender)
        self.make_caches(main, hidden)

        # -- OpenVDB: single and sequence (Blender only needs the paths here)
        vdb = write(proj / "volumes" / "smoke.vdb", b"fake vdb: smoke")
        vol = bpy.data.volumes.new("smoke")
        vol.filepath = self.rel(main, vdb)
        vol.use_fake_user = True
        vdbs = [write(proj / "volumes" / f"fire_{f:04d}.vdb", b"vdb %d" % f) for f in range(1, 4)]
        vol2 = bpy.data.volumes.new("fire")
        vol2.filepath = self.rel(main, vdbs[0])
        vol2.is_sequence = True
        vol2.frame_duration = 3
        vol2.use_fake_user = True
        self.add("volume", vdb)
        self.add("volume sequence", *vdbs)

        # -- point cache on disk: //blendcache_main/
        cloth_obj = self.plane("cloth", bpy.data.materials.new("cloth"), (0, 0, 3), hidden)
        cloth = cloth_obj.modifiers.new("Cloth", "CLOTH")
        cloth.point_cache.use_disk_cache = True
        cloth.point_cache.name = "clothcache"
        pc_dir = main.parent / f"blendcache_{main.stem}"
        pcs = [write(pc_dir / f"clothcache_{f:06d}_00.bphys", b"BPHYS%d" % f) for f in (1, 2, 3)]
        self.add("point cache", *pcs)

        # -- geometry-nodes Import nodes (file-path sockets)
        imports = bpy.data.node_groups.new("importers", "GeometryNodeTree")
        imports.use_fake_user = True
        obj_file = write(proj / "imports" / "tri.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
        csv_file = write(proj / "imports" / "points.csv", b"x,y,z\n0,0,0\n1,1,1\n")
        if hasattr(bpy.types, "GeometryNodeImportOBJ"):  # Blender 4.3+
            pairs = (("GeometryNodeImportOBJ", obj_file), ("GeometryNodeImportCSV", csv_file))
            for idname, f in pairs:
                node = imports.nodes.new(idname)
                node.inputs["Path"].default_value = self.rel(main, f)
            self.add("geometry nodes import", obj_file, csv_file)

        # -- mesh cache modifier (PC2 file)
        mc_obj = self.plane("mesh cached", bpy.data.materials.new("mc"), (0, 0, 6), hidden)
        mcm = mc_obj.modifiers.new("MeshCache", "MESH_CACHE")
        mcm.cache_format = "PC2"
        pc2 = write(proj / "caches" / "deform.pc2", b"POINTCACHE2\0fake")
        mcm.filepath = self.rel(main, pc2)
        self.add("mesh cache", pc2)

        # -- fluid cache folder
        dom = self.plane("fluid domain", bpy.data.materials.new("dom"), (0, 0, 4), hidden)
        fl = dom.modifiers.new("Fluid", "FLUID")
        fl.fluid_type = "DOMAIN"
        fl.domain_settings.cache_directory = "//fluid cache/"
        fdir = main.parent / "fluid cache"
        fluid = [
            write(fdir / "config" / "config_0001.uni", b"cfg"),
            write(fdir / "data" / "fluid_data_0001.vdb", b"data 1"),
            write(fdir / "data" / "fluid_data_0002.vdb", b"data 2"),
        ]
        self.add("fluid cache", *fluid)

        # -- geometry-nodes bake folder
        gn_obj = self.plane("gn baked", bpy.data.materials.new("gn"), (0, 0, 5), hidden)
        group = bpy.data.node_groups.new("bake group", "GeometryNodeTree")
        group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
        group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
        gin = group.nodes.new("NodeGroupInput")
        gout = group.nodes.new("NodeGroupOutput")
        bake = group.nodes.new("GeometryNodeBake")
        group.links.new(gin.outputs[0], bake.inputs[0])
        group.links.new(bake.outputs[0], gout.inputs[0])
        gn = gn_obj.modifiers.new("GN", "NODES")
        gn.node_group = group
        if hasattr(gn, "bake_target"):  # Blender 4.3+ (before, bakes always go to disk)
            gn.bake_target = "DISK"
        gn.bake_directory = "//gn bakes/"
        bake_id = str(gn.bakes[0].bake_id) if len(gn.bakes) else "1"
        bdir = main.parent / "gn bakes" / bake_id
        gn_files = [
            write(bdir / "meta" / "1.json", b"{}"),
            write(bdir / "blobs" / "1_0.blob", b"blob"),
        ]
        self.add("geometry nodes bake", *gn_files)

        # -- text data-block on an external file
        script = write(proj / "scripts" / "rig tools.py", b"print('hello from an external text')\n")
        txt = bpy.data.texts.load(self.rel(main, script), internal=False)
        txt.use_fake_user = True
        self.add("text", script)

        # -- not files: packed, generated
        packed_src = write(self.out / "scratch" / "packed.png", png_bytes(4, 4, (9, 9, 9)))
        packed = bpy.data.images.load(str(packed_src))
        packed.pack()
        packed.use_fake_user = True
        self.not_files["packed image"] = str(packed_src)
        gen = bpy.data.images.new("generated", 4, 4)
        gen.use_fake_user = True

    def make_movie(self, dest: Path, frames: list[Path]) -> Path:
        """A real 3-frame H.264 movie, written by Blender from PNG frames."""
        bpy = self.bpy
        dest.parent.mkdir(parents=True, exist_ok=True)
        s = bpy.data.scenes.new("movie maker")
        s.render.resolution_x = 16
        s.render.resolution_y = 16
        s.render.resolution_percentage = 100
        s.frame_start = 1
        s.frame_end = len(frames)
        ed = s.sequence_editor_create()
        st = strips_of(ed).new_image("frames", str(frames[0]), 1, 1)
        for f in frames[1:]:
            st.elements.append(f.name)
        if hasattr(s.render.image_settings, "media_type"):
            s.render.image_settings.media_type = "VIDEO"
        s.render.image_settings.file_format = "FFMPEG"
        s.render.ffmpeg.format = "MPEG4"
        s.render.ffmpeg.codec = "H264"
        s.render.filepath = str(dest)
        s.render.use_file_extension = False
        bpy.ops.render.render(animation=True, scene=s.name)
        bpy.data.scenes.remove(s)
        return dest

    def make_caches(self, main: Path, hidden) -> None:
        bpy = self.bpy
        proj = self.project
        abc = proj / "caches" / "anim.abc"
        usd = proj / "caches" / "scene.usdc"
        abc.parent.mkdir(parents=True, exist_ok=True)
        # Export a lone cube from a scratch scene, then reference the files.
        scratch = bpy.data.scenes.new("cache maker")
        cube = bpy.data.meshes.new("cube")
        cube.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
        scratch.collection.objects.link(bpy.data.objects.new("cube", cube))
        win_scene = bpy.context.scene
        bpy.context.window.scene = scratch if bpy.context.window else None
        with bpy.context.temp_override(scene=scratch):
            bpy.ops.wm.alembic_export(filepath=str(abc), start=1, end=1)
            bpy.ops.wm.usd_export(filepath=str(usd))
        if bpy.context.window:
            bpy.context.window.scene = win_scene
        bpy.data.scenes.remove(scratch)
        before = set(bpy.data.cache_files)
        with bpy.context.temp_override(scene=win_scene):
            bpy.ops.wm.alembic_import(filepath=str(abc), relative_path=True)
        new = [c for c in bpy.data.cache_files if c not in before]
        cf = new[0]
        cf.filepath = self.rel(main, abc)
        cf.use_fake_user = True
        for ob in list(win_scene.collection.objects):
            if ob.name.startswith("cube"):
                win_scene.collection.objects.unlink(ob)
                hidden.objects.link(ob)
        cf_usd = cf.copy()
        cf_usd.name = "usd cache"
        cf_usd.filepath = self.rel(main, usd)
        cf_usd.use_fake_user = True
        self.add("alembic", abc)
        self.add("usd", usd)


class EdgeCases(Builder):
    """Small files for the corner cases (``--edge-cases``), all under OUTDIR/edge/:

    - ``missing.blend``: images on files that do not exist (relative, absolute, a sequence,
      a UDIM set with no tile), a library that does not exist; one image that exists;
    - ``cycle_a.blend`` <-> ``cycle_b.blend``: two libraries linking each other;
    - ``long/deep.blend``: an image outside the project at a path so long that the
      rewritten path cannot fit Blender's 1024-byte field;
    - ``asname/shot.blend`` (image + disk point cache ``//blendcache_shot/``) and its
      copy ``elsewhere/autosave copy.blend``, saved by Blender elsewhere with paths
      remapped, as the Blender layer saves an unsaved scene;
    - ``packed.blend``: only a packed image, a packed library and a ``<builtin>`` font;
    - ``strips.blend``: image and movie strips on files outside the project;
    - ``escaped/escaped.blend``: file names with ``%``, ``:``, a backslash and a tab.
    """

    def build(self) -> None:
        bpy = self.bpy
        edge = self.out / "edge"
        (edge / ".git").mkdir(parents=True, exist_ok=True)
        present = write(edge / "textures" / "present.png", png_bytes(4, 4, (5, 5, 5)))
        info: dict[str, str] = {"root": str(edge), "present": str(present)}

        # missing.blend
        path = edge / "missing.blend"
        self.new_file(path)
        self.image("present", self.rel(path, present)).use_fake_user = True
        self.image("gone rel", "//textures/gone.png").use_fake_user = True
        self.image("gone abs", "/nonexistent/folder/gone.png").use_fake_user = True
        self.image("gone seq", "//textures/seq/gone_0001.png", "SEQUENCE").use_fake_user = True
        udim = bpy.data.images.new("gone udim", 4, 4, tiled=True)
        udim.source = "TILED"
        udim.filepath = "//textures/udim/gone.<UDIM>.png"
        udim.use_fake_user = True
        lib_src = edge / "scratch" / "vanishing lib.blend"
        self.save(path)
        # a library that will be deleted after linking
        self.new_file(lib_src)
        c = bpy.data.collections.new("VANISH")
        c.use_fake_user = True
        self.save(lib_src)
        bpy.ops.wm.open_mainfile(filepath=str(path))
        with bpy.data.libraries.load(str(lib_src), link=True, relative=True) as (_s, dst):
            dst.collections = ["VANISH"]
        bpy.context.scene.collection.children.link(dst.collections[0])
        self.save(path)
        lib_src.unlink()
        info["missing"] = str(path)
        info["missing_library"] = str(lib_src)

        # cycle_a <-> cycle_b
        a = edge / "cycle" / "cycle_a.blend"
        b = edge / "cycle" / "cycle_b.blend"
        self.new_file(a)
        ca = bpy.data.collections.new("CA")
        ca.use_fake_user = True
        self.save(a)
        self.new_file(b)
        cb = bpy.data.collections.new("CB")
        cb.use_fake_user = True
        with bpy.data.libraries.load("//cycle_a.blend", link=True, relative=True) as (_s, dst):
            dst.collections = ["CA"]
        cb.children.link(dst.collections[0])
        self.save(b)
        bpy.ops.wm.open_mainfile(filepath=str(a))
        with bpy.data.libraries.load("//cycle_b.blend", link=True, relative=True) as (_s, dst):
            dst.collections = ["CB"]
        bpy.context.scene.collection.children.link(dst.collections[0])
        self.save(a)
        info["cycle_a"] = str(a)
        info["cycle_b"] = str(b)

        # long/deep.blend: the rewritten path of a very deep outside file cannot fit
        deep = self.out / "deep outside"
        remaining = 1010 - len(str(deep)) - len("/t.png")  # fits Blender's 1023 bytes...
        i = 0
        while remaining > 1:
            n = min(remaining - 1, 240)
            deep = deep / (f"{i}" + "d" * (n - 1))
            remaining -= n + 1
            i += 1
        # ...but "//../../_outside_project" + this path does not.
        deep_tex = write(deep / "t.png", png_bytes(2, 2, (1, 1, 1)))
        long_blend = edge / "long" / "deep.blend"
        self.new_file(long_blend)
        self.image("deep", str(deep_tex)).use_fake_user = True
        self.save(long_blend)
        info["long"] = str(long_blend)
        info["long_texture"] = str(deep_tex)

        # asname/shot.blend and a remapped copy elsewhere
        shot = edge / "asname" / "shot.blend"
        self.new_file(shot)
        tex = write(edge / "asname" / "tex" / "color.png", png_bytes(4, 4, (100, 50, 25)))
        self.image("color", self.rel(shot, tex)).use_fake_user = True
        cloth_obj = self.plane(
            "cloth", bpy.data.materials.new("cloth"), (0, 0, 0), bpy.context.scene.collection
        )
        cloth = cloth_obj.modifiers.new("Cloth", "CLOTH")
        cloth.point_cache.use_disk_cache = True
        cloth.point_cache.name = "pc"
        pcs = [
            write(edge / "asname" / "blendcache_shot" / f"pc_{f:06d}_00.bphys", b"pc%d" % f)
            for f in (1, 2)
        ]
        self.save(shot)
        copy = self.out / "elsewhere" / "autosave copy.blend"
        copy.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(
            filepath=str(copy), copy=True, relative_remap=True, compress=True
        )
        info["asname_shot"] = str(shot)
        info["asname_copy"] = str(copy)
        info["asname_texture"] = str(tex)
        info["asname_caches"] = json.dumps([str(p) for p in pcs])

        # packed.blend
        packed = edge / "packed.blend"
        self.new_file(packed)
        src = write(edge / "scratch" / "to pack.png", png_bytes(4, 4, (7, 7, 7)))
        img = bpy.data.images.load(str(src))
        img.pack()
        img.use_fake_user = True
        bpy.context.scene.collection.objects.link(
            bpy.data.objects.new("txt", bpy.data.curves.new("txt", "FONT"))
        )
        lib = edge / "scratch" / "packed lib.blend"
        self.save(packed)
        self.new_file(lib)
        pk = bpy.data.collections.new("PK")
        pk.use_fake_user = True
        self.save(lib)
        bpy.ops.wm.open_mainfile(filepath=str(packed))
        with bpy.data.libraries.load(self.rel(packed, lib), link=True, relative=True) as (
            _s,
            dst,
        ):
            dst.collections = ["PK"]
        bpy.context.scene.collection.children.link(dst.collections[0])
        bpy.ops.file.pack_libraries()
        self.save(packed)
        info["packed"] = str(packed)
        info["packed_library"] = str(lib)
        info["packed_source"] = str(src)

        # strips.blend: sequencer strips on files outside the project (their folder
        # fields, 768 bytes, must be rewritten)
        strips_blend = edge / "strips.blend"
        self.new_file(strips_blend)
        far = self.out / "outside strips"
        frames = [
            write(far / "frames" / f"s_{f:04d}.png", png_bytes(4, 4, (f, 0, 0))) for f in (1, 2)
        ]
        movie = self.make_movie(far / "movie" / "m.mp4", frames)
        ed = bpy.context.scene.sequence_editor_create()
        st = strips_of(ed).new_image("img", str(frames[0]), 1, 1)
        st.elements.append(frames[1].name)
        strips_of(ed).new_movie("mov", str(movie), 2, 1)
        self.save(strips_blend)
        info["strips"] = str(strips_blend)
        info["strips_files"] = json.dumps([str(p) for p in [*frames, movie]])

        # escaped.blend: names the checkout must escape ('%', ':', a backslash, a tab)
        esc = edge / "escaped" / "escaped.blend"
        self.new_file(esc)
        odd = [
            write(edge / "escaped" / "tex" / n, png_bytes(2, 2, (i, i, i)))
            for i, n in enumerate(["50% gray.png", "a:b.png", "back\\slash.png", "tab\there.png"])
        ]
        seq = [write(edge / "escaped" / "seq%" / f"f%_{f:04d}.png", b"s%d" % f) for f in (1, 2)]
        for f in odd:
            self.image(f.name, self.rel(esc, f)).use_fake_user = True
        self.image("seq", self.rel(esc, seq[0]), "SEQUENCE").use_fake_user = True
        self.save(esc)
        info["escaped"] = str(esc)
        info["escaped_files"] = json.dumps([str(p) for p in odd + seq])

        (self.out / "edge.json").write_text(json.dumps(info, indent=1), "utf-8")


def generate_edge_cases(outdir: Path) -> dict[str, str]:
    """Build the corner-case files (see ``EdgeCases``) and return their paths by name."""
    cmd = [bpy_python(), str(HERE / "blendgen.py"), str(outdir), "--edge-cases"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(
            f"blendgen --edge-cases failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads((Path(outdir) / "edge.json").read_text("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--libraries", type=int, default=2)
    parser.add_argument("--files", type=int, default=0, help="extra (bulk) dependency files")
    parser.add_argument("--total-mb", type=float, default=0.0, help="bytes of the bulk files")
    parser.add_argument("--total-bytes", type=int, default=0, help="same, in bytes")
    parser.add_argument("--kinds", choices=("all", "basic"), default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--main-images", type=int, default=None, metavar="N",
                        help="how many of the bulk files main.blend holds as image "
                        "data-blocks (default: an equal share with each library); the "
                        "rest are split over the libraries")
    parser.add_argument("--edge-cases", action="store_true", help="build the corner cases")
    args = parser.parse_args(argv)
    if args.total_mb and not args.total_bytes:
        args.total_bytes = int(args.total_mb * 1024 * 1024)
    outdir = args.outdir.resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    if args.edge_cases:
        EdgeCases(outdir, args).build()
        print(outdir / "edge.json")
        return 0
    Builder(outdir, args).build()
    print(outdir / "production.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
