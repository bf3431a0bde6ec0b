"""Real .blend files shaped like the plain-file productions the pipeline and fault tests
need: generated ONCE per session by real Blender, then copied into each test's folder.

Every template's main file has a fluid-domain modifier whose cache folder is ``//tex/``:
the collector takes EVERY file under ``tex/`` (a cache folder, the DIRECTORY kind),
whatever names and sizes a test writes there, so a test chooses its files freely and its
submission still goes through ``collect()`` like any other. Variants:

- ``plain``: only that;
- ``missing``: also an image on ``//missing/gone.png``, which is never written (a
  missing dependency, reported with who references it);
- ``library``: also links ``//libs/lib.blend``, whose image is
  ``//../../shared/outside.png``: outside the project, so the collector must write a
  rewritten copy of the library (the "temporary copy" cases);
- ``both``: ``missing`` and ``library`` together.

Run as a script (it imports ``bpy``, so in its own process)::

    .venv/bin/python tests/support/blend_templates.py OUTDIR

which writes ``OUTDIR/<variant>/shot.blend`` (and ``libs/lib.blend`` for the library
variants). From tests: the session fixture ``blend_templates`` (``tests/conftest.py``)
and ``Project``, which lays a template out in a test's own folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ("plain", "missing", "library", "both")
BLEND_NAME = "shot.blend"
CACHE_DIR = "tex"  # the fluid cache folder: every file below it is a dependency
MISSING = "missing/gone.png"  # relative to the project; never written
MISSING_IMAGE = "gone.png"  # the image data-block that references it
LIBRARY = "libs/lib.blend"  # relative to the project
OUTSIDE = "shared/outside.png"  # relative to the folder ABOVE the project
OUTSIDE_IMAGE = "outside.png"


def content(seed: str, size: int) -> bytes:
    """``size`` bytes unique to ``seed`` (a 64 KiB block repeated)."""
    salt = os.environ.get("SHAMAN_TEST_CONTENT_SALT", "")  # see blendgen.generate
    block = hashlib.sha256(f"{salt}{seed}".encode()).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


class Templates:
    """The generated template folders, one per variant."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, variant: str) -> Path:
        if variant not in VARIANTS:
            raise ValueError(f"unknown template variant {variant!r}; one of {VARIANTS}")
        return self.root / variant


def generate(outdir: Path) -> Templates:
    """Build every variant in ONE bpy subprocess (a few seconds); ``bpy`` can be imported
    once per process only, and Blender's start-up is most of the cost."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(outdir)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(
            f"blend_templates failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return Templates(outdir)


class Project:
    """A template laid out in ``root``: ``root/project/shot.blend`` (the project root has
    a ``.blender_project`` marker), the files the test asks for under ``project/tex/``,
    and for the library variants ``project/libs/lib.blend`` and ``root/shared/outside.png``.

    ``files`` are the test's own files, named ``tex/<prefix>NNN<suffix>`` with bytes unique
    to ``seed``; ``add`` writes more (anywhere under ``tex/``).
    """

    def __init__(self, templates: Templates, root: Path, sizes: list[int], *,
                 variant: str = "plain", seed: str = "f", prefix: str = "t",
                 digits: int = 3, suffix: str = ".png") -> None:
        self.root = root
        self.variant = variant
        self.project = root / "project"
        (self.project / ".blender_project").mkdir(parents=True, exist_ok=True)
        (self.project / CACHE_DIR).mkdir(exist_ok=True)
        src = templates.folder(variant)
        self.blend = self.project / BLEND_NAME
        shutil.copyfile(src / BLEND_NAME, self.blend)
        self.library: Path | None = None
        self.outside: Path | None = None
        if variant in ("library", "both"):
            self.library = self.project / LIBRARY
            self.library.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / LIBRARY, self.library)
            self.outside = root / OUTSIDE
            self.outside.parent.mkdir(parents=True, exist_ok=True)
            self.outside.write_bytes(content(f"{seed}-outside", 1500))
        self.missing = self.project / MISSING if variant in ("missing", "both") else None
        self.files = [
            self.add(f"{prefix}{i:0{digits}d}{suffix}", content(f"{seed}-{i}", size))
            for i, size in enumerate(sizes)
        ]

    def add(self, name: str, data: bytes) -> Path:
        """Write a file under ``tex/`` (it becomes a dependency)."""
        path = self.project / CACHE_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    @property
    def all_files(self) -> list[Path]:
        """The main .blend and the test's own files."""
        return [self.blend, *self.files]

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.all_files)

    def checkout_path(self, path: Path) -> str:
        """Where a file inside the project lands in the checkout."""
        return path.relative_to(self.project).as_posix()

    @property
    def outside_checkout_path(self) -> str:
        """Where ``shared/outside.png`` lands: files outside the project go under
        ``_outside_project/`` followed by their absolute path (POSIX, plain names here)."""
        assert self.outside is not None, "only the library variants have an outside file"
        return "_outside_project" + self.outside.as_posix()

    def rewritten_library(self, cache_dir: Path) -> Path:
        """The rewritten copy of ``libs/lib.blend`` the collector keeps in the cache folder
        (``rewritten/``): what the checkout's ``libs/lib.blend`` must hold."""
        copies = sorted((cache_dir / "rewritten").glob("*.blend"))
        assert len(copies) == 1, f"expected one rewritten copy in {cache_dir}: {copies}"
        return copies[0]

    def expected(self, cache_dir: Path | None = None) -> dict[str, Path | bytes]:
        """Checkout path -> the file (or bytes) it must hold: the main .blend, every file
        under ``tex/`` and, for the library variants, the rewritten library (read from
        ``cache_dir``, so only after a run with that cache) and the outside file."""
        out: dict[str, Path | bytes] = {BLEND_NAME: self.blend}
        for path in sorted((self.project / CACHE_DIR).rglob("*")):
            if path.is_file():
                out[self.checkout_path(path)] = path
        if self.library is not None:
            assert cache_dir is not None, "the rewritten library is read from the cache"
            assert self.outside is not None
            out[LIBRARY] = self.rewritten_library(cache_dir).read_bytes()
            out[self.outside_checkout_path] = self.outside
        return out

    def content_keys(self, cache_dir: Path | None = None) -> set[tuple[str, int]]:
        """(sha256, size) of every content the checkout holds."""
        out = set()
        for want in self.expected(cache_dir).values():
            data = want if isinstance(want, bytes) else want.read_bytes()
            out.add((hashlib.sha256(data).hexdigest(), len(data)))
        return out


# -- the part that runs inside Blender -----------------------------------------------------


def _fresh(bpy) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _save(bpy, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(path), compress=True, relative_remap=False)
    backup = path.with_suffix(".blend1")
    if backup.exists():
        backup.unlink()


def _image(bpy, name: str, filepath: str):
    img = bpy.data.images.new(name, 4, 4)
    img.source = "FILE"
    img.filepath = filepath
    img.use_fake_user = True
    return img


def _build_library(bpy, path: Path) -> None:
    """``libs/lib.blend``: an object (what the main file links) and an image outside the
    project, stored relative to the library: ``//../../shared/outside.png``."""
    _fresh(bpy)
    _save(bpy, path)  # saved once first, so '//' paths are relative to its folder
    mesh = bpy.data.meshes.new("lib mesh")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    ob = bpy.data.objects.new("LIB", mesh)
    bpy.context.scene.collection.objects.link(ob)
    _image(bpy, OUTSIDE_IMAGE, "//../../" + OUTSIDE)
    _save(bpy, path)


def _build_main(bpy, folder: Path, variant: str) -> None:
    main = folder / BLEND_NAME
    if variant in ("library", "both"):
        _build_library(bpy, folder / LIBRARY)  # first: it starts a file of its own
    _fresh(bpy)
    _save(bpy, main)  # saved once first, so '//' paths are relative to its folder
    scene = bpy.context.scene
    mesh = bpy.data.meshes.new("domain mesh")
    mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    domain = bpy.data.objects.new("fluid domain", mesh)
    scene.collection.objects.link(domain)
    fluid = domain.modifiers.new("Fluid", "FLUID")
    fluid.fluid_type = "DOMAIN"
    fluid.domain_settings.cache_directory = f"//{CACHE_DIR}/"
    if variant in ("missing", "both"):
        _image(bpy, MISSING_IMAGE, "//" + MISSING)
    if variant in ("library", "both"):
        with bpy.data.libraries.load("//" + LIBRARY, link=True, relative=True) as (_s, dst):
            dst.objects = ["LIB"]
        for ob in dst.objects:
            scene.collection.objects.link(ob)
    _save(bpy, main)


def main(outdir: str) -> int:
    import bpy

    out = Path(outdir).resolve()
    for variant in VARIANTS:
        folder = out / variant
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        _build_main(bpy, folder, variant)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
