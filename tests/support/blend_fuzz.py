"""Damaged .blend files for the fuzz tests, and a worker process that traces them.

Seeds: a small scene saved by real Blender (``bpy``, in its own process) uncompressed and
zstd-compressed, and the uncompressed one gzip-compressed (Blender 5 no longer writes
gzip, older ones did; BAT reads both). Variants: truncations at many offsets and single
byte changes, at random places and at the places that steer reading (the file header,
block headers, the DNA catalogue's counts). For a compressed seed the change is made in
the decompressed bytes, which are compressed again, so it reaches the reader.

Each variant is traced in a worker process (``python blend_fuzz.py trace DIR``) with an
address-space limit, so a memory blow-up is a ``MemoryError`` there, and the parent
kills the worker when one variant takes longer than its guard: a hang or a blow-up is
caught and named, never suffered by the test run.
"""

from __future__ import annotations

import gzip
import json
import os
import queue
import random
import resource
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SEED_NAMES = ("plain", "zstd", "gzip")
CHUNK_BYTES = 1 << 20
WORKER_MEMORY_LIMIT = 2 << 30  # address space of the worker (Python and BAT use ~300 MB)

_BPY_SCRIPT = """
import bpy, sys
out = sys.argv[1]
bpy.ops.wm.read_factory_settings(use_empty=False)
img = bpy.data.images.new("tex", 4, 4)
img.filepath = "//tex/a.png"
img.source = "FILE"
img.use_fake_user = True
bpy.ops.object.modifier_add(type="SUBSURF")
bpy.ops.wm.save_as_mainfile(filepath=out + "/plain.blend", compress=False)
bpy.ops.wm.save_as_mainfile(filepath=out + "/zstd.blend", compress=True)
"""


def make_seeds(outdir: Path) -> dict[str, Path]:
    """The three seed files, made by real Blender (a couple of seconds)."""
    outdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", _BPY_SCRIPT, str(outdir)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"making seed .blend files failed:\n{proc.stderr[-3000:]}")
    plain = (outdir / "plain.blend").read_bytes()
    (outdir / "gzip.blend").write_bytes(gzip.compress(plain, compresslevel=6, mtime=0))
    return {name: outdir / f"{name}.blend" for name in SEED_NAMES}


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if how == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


def hot_offsets(plain: bytes) -> list[int]:
    """Offsets that steer reading: the file header, each block header's length and count
    (the first 40 blocks), and the DNA catalogue's start and its four count fields."""
    hot = list(range(17))
    offset = 17  # Blender 5 header; block headers: code, sdna, old, len, nr (4+4+8+8+8)
    for _ in range(2000):
        if offset + 32 > len(plain):
            break
        code = plain[offset:offset + 4]
        length = struct.unpack_from("<q", plain, offset + 16)[0]
        if len(hot) < 400:
            hot += [offset, offset + 4, offset + 16, offset + 19, offset + 24, offset + 27]
        if code == b"DNA1":
            dna = offset + 32
            hot += list(range(dna, dna + 24))
            for tag in (b"TYPE", b"TLEN", b"STRC"):
                at = plain.find(tag, dna)
                if at >= 0:
                    hot += list(range(at, at + 10))
            hot += list(range(dna + length - 64, dna + length))
        if code == b"ENDB" or length < 0:
            break
        offset += 32 + length
    return sorted(set(o for o in hot if 0 <= o < len(plain)))


def write_variants(seeds: dict[str, Path], outdir: Path, *, truncations: int, flips: int,
                   seed: int = 13) -> list[Path]:
    """Variant files in ``outdir``; for each seed ``truncations`` cut points and ``flips``
    single-byte changes (half at hot offsets)."""
    rng = random.Random(seed)
    outdir.mkdir(parents=True, exist_ok=True)
    plain = seeds["plain"].read_bytes()
    hot = hot_offsets(plain)
    made: list[Path] = []
    for how in SEED_NAMES:
        disk = seeds[how].read_bytes()
        for i in range(truncations):
            cut = rng.randrange(len(disk)) if i else len(disk) // 2
            made.append(_write(outdir / f"{how}-cut{cut}.blend", disk[:cut]))
        for i in range(flips):
            at = rng.choice(hot) if i % 2 == 0 else rng.randrange(len(plain))
            value = rng.choice((0xFF, 0x7F, 0x00, plain[at] ^ 0xFF, plain[at] ^ 0x01))
            data = bytearray(plain)
            data[at] = value
            made.append(_write(outdir / f"{how}-at{at}-{value:02x}.blend",
                               compress(bytes(data), how)))
    return made


def damaged_names_count(plain: bytes) -> bytes:
    """The DNA catalogue's count of names made smaller (its second byte zeroed): BAT
    then reads the count of types from inside a name, some 1.7 billion, and loops over
    them (BAT 1.23 hung here at 100% CPU)."""
    at = plain.index(b"SDNANAME") + 9
    return plain[:at] + b"\0" + plain[at + 1:]


def looping_modifiers(plain_path: Path) -> bytes:
    """The Cube's first modifier made to name itself as the next one: a linked list that
    never ends (BAT 1.23 followed it forever)."""
    from blender_asset_tracer.blendfile import BlendFile

    with BlendFile(plain_path) as bfile:
        cube = next(b for b in bfile.blocks if b.code == b"OB" and b.id_name == b"OBCube")
        mod = cube.get_pointer((b"modifiers", b"first"))
        offset, _items = mod.abs_offset((b"modifier", b"next"))
        addr = mod.addr_old
    data = bytearray(plain_path.read_bytes())
    data[offset:offset + 8] = struct.pack("<Q", addr)  # a pointer: 8 bytes
    return bytes(data)


def bomb(plain: bytes, how: str, extra: int) -> bytes:
    """A real .blend followed by ``extra`` zero bytes, compressed: a few KB on disk that
    expand past the decompression ceiling."""
    zeros = bytes(CHUNK_BYTES)
    if how == "zstd":
        import zstandard

        obj = zstandard.ZstdCompressor(level=3).compressobj()
        parts = [obj.compress(plain)]
        parts += [obj.compress(zeros) for _ in range(extra // CHUNK_BYTES)]
        return b"".join([*parts, obj.flush()])
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip container
    parts = [comp.compress(plain)] + [comp.compress(zeros) for _ in range(extra // CHUNK_BYTES)]
    return b"".join([*parts, comp.flush()])


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@dataclass
class FuzzResult:
    outcomes: dict[str, str] = field(default_factory=dict)  # variant name -> class name
    messages: dict[str, str] = field(default_factory=dict)  # variant name -> error text
    seconds: dict[str, float] = field(default_factory=dict)
    hung: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0  # the largest of the workers' peak resident memory

    @property
    def slowest(self) -> tuple[str, float]:
        name = max(self.seconds, key=lambda n: self.seconds[n])
        return name, self.seconds[name]


def run_fuzz(files: list[Path], *, guard_s: float = 20.0) -> FuzzResult:
    """Trace every file in worker processes; a variant that takes longer than ``guard_s``
    is recorded as hung and its worker killed (the next worker goes on after it)."""
    result = FuzzResult()
    todo = list(files)
    while todo:
        done = _one_worker(todo, guard_s, result)
        todo = todo[done:]
    return result


def _one_worker(todo: list[Path], guard_s: float, result: FuzzResult) -> int:
    listing = "\n".join(str(p) for p in todo)
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "trace"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(listing)
    proc.stdin.close()
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    done = 0
    while done < len(todo):
        try:
            line = lines.get(timeout=guard_s)
        except queue.Empty:
            result.hung.append(todo[done].name)
            result.seconds[todo[done].name] = guard_s
            proc.kill()
            proc.wait()
            return done + 1
        if line is None:
            break
        record = json.loads(line)
        if "peak_rss_mb" in record:
            result.peak_rss_mb = max(result.peak_rss_mb, record["peak_rss_mb"])
            continue
        result.outcomes[record["name"]] = record["outcome"]
        result.messages[record["name"]] = record["message"]
        result.seconds[record["name"]] = record["s"]
        done += 1
    while (line := lines.get(timeout=guard_s)) is not None:  # the worker's last line
        result.peak_rss_mb = max(result.peak_rss_mb, json.loads(line)["peak_rss_mb"])
    proc.wait()
    if done < len(todo):  # the worker died (killed by the kernel, say) on this variant
        result.outcomes[todo[done].name] = f"worker died ({proc.returncode})"
        return done + 1
    return done


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _trace_worker() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))
    sys.path.insert(0, str(ROOT))
    from shaman_addon.collect.trace import trace_blend
    from shaman_addon.errors import BlendFileError

    for line in sys.stdin.read().splitlines():
        path = Path(line)
        start = time.perf_counter()
        message = ""
        try:
            trace_blend(path)
            outcome = "traced"
        except BlendFileError as exc:
            outcome, message = f"BlendFileError:{type(exc).__name__}", str(exc)[:500]
        except BaseException as exc:  # what the fuzz test must never see
            outcome = f"OTHER:{type(exc).__name__}: {exc}"[:300]
        print(json.dumps({"name": path.name, "outcome": outcome, "message": message,
                          "s": round(time.perf_counter() - start, 4)}), flush=True)
    # VmHWM, not ru_maxrss: after fork and exec, ru_maxrss keeps the forking process's
    # size (a long test run's pytest), VmHWM is this process's own peak.
    peak_kb = next(int(line.split()[1]) for line in
                   Path("/proc/self/status").read_text().splitlines()
                   if line.startswith("VmHWM:"))
    print(json.dumps({"peak_rss_mb": round(peak_kb / 1024, 1)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["trace"]:
        os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        _trace_worker()
    else:
        print(make_seeds(Path(sys.argv[1])))
