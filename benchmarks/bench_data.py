"""Benchmark productions, built once with the test-production generator and cached.

Each production lives in ``.bench-cache/<name>/`` and is reused while its parameters are
the same; ``production.json`` (written last by the generator) marks it complete. The
generator runs ``bpy``, so it runs in its own process.

The 2 GiB production is a generated production with one bulk texture, which is then
grown to 2 GiB here by streaming unique bytes to it: the generator builds its bulk bytes
in memory, which for 2 GiB would cost several GB of RAM for no benefit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench.data")

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "tests" / "support" / "blendgen.py"
DEFAULT_CACHE = REPO / ".bench-cache"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Spec:
    """What to generate: dependency files (bulk), their bytes, libraries, extra kinds."""

    files: int
    total_bytes: int
    libraries: int = 20
    kinds: str = "all"
    seed: int = 0
    big_file_bytes: int = 0  # >0: grow the one bulk file to this size
    main_images: int | None = None  # bulk images main.blend holds (None: an equal share)

    @property
    def name(self) -> str:
        big = f"-big{self.big_file_bytes}" if self.big_file_bytes else ""
        main = "" if self.main_images is None else f"-m{self.main_images}"
        return (f"prod-f{self.files}-b{self.total_bytes}-l{self.libraries}-{self.kinds}"
                f"-s{self.seed}{big}{main}")


@dataclass
class Production:
    """A generated production on disk."""

    root: Path
    main_blend: Path
    files: list[Path]  # every file the pack plan must hold (the main .blend included)
    bulk: list[Path]

    @property
    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)

    def file_list(self) -> Path:
        """A text file, one absolute path a line, for the reference floor."""
        path = self.root / "files.txt"
        text = "\n".join(str(p) for p in self.files) + "\n"
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")
        return path


def _generator_digest() -> str:
    return hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:12]


def build(spec: Spec, cache: Path = DEFAULT_CACHE, *, python: str = "",
          regenerate: bool = False) -> Production:
    """The production for ``spec``: from the cache, else generated now."""
    out = cache / spec.name
    done = out / "production.json"
    stamp = out / "bench-complete.json"
    if regenerate and out.exists():
        shutil.rmtree(out)
    if not stamp.exists():
        if out.exists():
            shutil.rmtree(out)  # a half-made one (interrupted run)
        out.mkdir(parents=True)
        t0 = time.perf_counter()
        cmd = [python or sys.executable, str(GENERATOR), str(out), "--libraries",
               str(spec.libraries), "--files", str(spec.files), "--total-bytes",
               str(spec.total_bytes), "--kinds", spec.kinds, "--seed", str(spec.seed)]
        if spec.main_images is not None:
            cmd += ["--main-images", str(spec.main_images)]
        log.info("generating %s", spec.name)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not done.exists():
            raise RuntimeError(f"the generator failed for {spec.name}:\n{proc.stderr[-3000:]}")
        if spec.big_file_bytes:
            bulk = json.loads(done.read_text("utf-8"))["kinds"]["bulk"]
            _grow(Path(bulk[0]), spec.big_file_bytes, spec.seed)
        stamp.write_text(json.dumps({"generator": _generator_digest(),
                                     "seconds": round(time.perf_counter() - t0, 1)}), "utf-8")
    elif json.loads(stamp.read_text("utf-8")).get("generator") != _generator_digest():
        log.warning("%s was made by an older tests/blendgen.py; pass --regenerate to rebuild",
                    out)
    data = json.loads(done.read_text("utf-8"))
    return Production(
        root=out,
        main_blend=Path(data["main_blend"]),
        files=[Path(p) for p in data["expected_files"]],
        bulk=[Path(p) for p in data["kinds"].get("bulk", [])],
    )


def _grow(path: Path, size: int, seed: int) -> None:
    """Rewrite ``path`` as ``size`` unique bytes, streamed (constant memory)."""
    pool = hashlib.shake_256(f"bench pool {seed}".encode()).digest(CHUNK)
    tmp = path.with_suffix(".grow.tmp")
    with open(tmp, "wb") as out:
        out.write(path.read_bytes()[:16])  # keep the PNG signature the generator wrote
        written = 16
        block = 0
        while written < size:
            n = min(CHUNK, size - written)
            head = block.to_bytes(8, "little")
            out.write((head + pool[8:])[:n])
            written += n
            block += 1
    os.replace(tmp, path)
