"""Rewriting streams (issue 13, item 3): the patched copy is made segment by segment,
with the same bytes as the whole-file rewrite made before (the checksum of a rewritten
copy must not change with the upgrade), and a ceiling on what a file may expand to."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from shaman_addon.collect import blend_limits, rewrite
from shaman_addon.collect.rewrite import Patch, stream_rewritten, write_rewritten
from shaman_addon.collect.trace import Slot, trace_blend
from shaman_addon.errors import BlendFileError, BlendTooLarge

import blend_fuzz

REPO = Path(__file__).resolve().parents[2]
COMPRESSION = {"plain": "none", "zstd": "zstd", "gzip": "gzip"}  # seed -> how it is stored

@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return blend_fuzz.make_seeds(tmp_path_factory.mktemp("rewrite-seeds"))


def whole_file_rewrite(source: Path, compression: str, patches: list[Patch]) -> bytes:
    """The rewrite as it was before streaming: everything in memory, compressed at once."""
    raw = source.read_bytes()
    if compression == "zstd":
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    elif compression == "gzip":
        raw = gzip.decompress(raw)
    buf = bytearray(raw)
    for p in patches:
        enc = p.new.encode("utf-8", "surrogateescape")
        buf[p.slot.offset:p.slot.offset + p.slot.size] = enc + b"\0" * (p.slot.size - len(enc))
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3, write_content_size=True).compress(bytes(buf))
    if compression == "gzip":
        return gzip.compress(bytes(buf), compresslevel=6, mtime=0)
    return bytes(buf)


def patches_of(path: Path, new: str = "//textures/renamed ü.png") -> list[Patch]:
    trace = trace_blend(path)
    assert trace.refs
    return [Patch(r.slot, r.path, new, r.referrer) for r in trace.refs if r.slot is not None]


def streamed(source: Path, compression: str, patches: list[Patch]) -> bytes:
    out = io.BytesIO()
    stream_rewritten(source, compression, patches, out)
    return out.getvalue()


@pytest.mark.parametrize("how", blend_fuzz.SEED_NAMES)
def test_streamed_copy_has_the_bytes_of_the_whole_file_rewrite(
        how: str, seeds: dict[str, Path], tmp_path: Path) -> None:
    source, how = seeds[how], COMPRESSION[how]
    patches = patches_of(source)
    expected = whole_file_rewrite(source, how, patches)
    dest = write_rewritten(source, how, patches, tmp_path / "copy.blend",
                           cache_dir=tmp_path / "cache")
    assert dest.read_bytes() == expected
    assert trace_blend(dest).refs[0].path == "//textures/renamed ü.png"


@pytest.mark.parametrize("how", blend_fuzz.SEED_NAMES)
def test_small_segments_patch_across_their_edges(
        how: str, seeds: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments far smaller than the file, one edge inside the path field: the content is
    the whole-file rewrite's, the bytes the same run after run; gzip and uncompressed
    files give the very same bytes, zstd one frame per segment."""
    source, how = seeds[how], COMPRESSION[how]
    patches = patches_of(source)
    slot = patches[0].slot
    monkeypatch.setattr(rewrite, "SEGMENT", slot.offset + 5)  # the 1st edge cuts the field
    once, again = streamed(source, how, patches), streamed(source, how, patches)
    assert once == again
    expected = whole_file_rewrite(source, how, patches)
    if how == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(once),
                                                            read_across_frames=True)
        content = reader.read()
        plain = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(expected)).read()
        assert content == plain and once != expected
    else:
        assert once == expected


def test_a_field_past_the_end_is_an_error_naming_the_file(seeds: dict[str, Path]) -> None:
    source = seeds["plain"]
    size = source.stat().st_size
    bad = [Patch(Slot(size - 4, 64), "x", "y", "IM x")]
    with pytest.raises(BlendFileError, match="changed while it was being collected") as info:
        streamed(source, "none", bad)
    assert str(source) in str(info.value)


@pytest.mark.parametrize("how", ["gzip", "zstd"])
def test_decompression_stops_at_the_ceiling(how: str, seeds: dict[str, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With the ceiling lowered to 4 MiB: a file expanding to 9 MiB is refused, whether
    traced or rewritten (the real ceiling, 1 GiB, is the e2e test's)."""
    monkeypatch.setattr(blend_limits, "DECOMPRESSED_MIN_CEILING", 4 << 20)
    monkeypatch.setattr(blend_limits, "DECOMPRESSED_RATIO", 2)
    path = tmp_path / f"bomb.{how}.blend"
    path.write_bytes(blend_fuzz.bomb(seeds["plain"].read_bytes(), how, 9 << 20))
    with pytest.raises(BlendTooLarge, match="expands past 4 MiB") as info:
        trace_blend(path)
    assert str(path) in str(info.value)
    with pytest.raises(BlendTooLarge):
        streamed(path, how, [])


REWRITE_IN_A_PROCESS = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from shaman_addon.collect.rewrite import Patch, write_rewritten
from shaman_addon.collect.trace import trace_blend
src = Path({src!r})
trace = trace_blend(src)
patches = [Patch(r.slot, r.path, "//textures/b.png", r.referrer) for r in trace.refs]
write_rewritten(src, trace.compression, patches, Path({dest!r}))
status = Path("/proc/self/status").read_text().splitlines()
print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""
BIG_EXTRA = 192 << 20  # bytes after the .blend's end: read, patched around and compressed
REWRITE_PEAK_RSS_MB = 160  # Python, BAT and the segments; the whole-file rewrite took 600+


def test_rewriting_a_large_file_takes_bounded_memory(seeds: dict[str, Path],
                                                     tmp_path: Path) -> None:
    """A zstd .blend of 190+ MB uncompressed, rewritten in a process of its own: its peak
    memory stays far below the file's size (the whole-file rewrite held it 3-4 times)."""
    source = tmp_path / "big.blend"
    source.write_bytes(blend_fuzz.bomb(seeds["plain"].read_bytes(), "zstd", BIG_EXTRA))
    dest = tmp_path / "copy.blend"
    code = REWRITE_IN_A_PROCESS.format(repo=str(REPO), src=str(source), dest=str(dest))
    # The child's own VmHWM: ru_maxrss from wait4 would keep the size of the forking
    # pytest process (hundreds of MB late in a full run).
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    peak_mb = int(proc.stdout.split()[-1]) / 1024
    assert peak_mb < REWRITE_PEAK_RSS_MB
    assert trace_blend(dest).refs[0].path == "//textures/b.png"
    size = sum(len(c) for c in blend_limits.read_chunks(dest, "zstd"))
    assert size == sum(len(c) for c in blend_limits.read_chunks(source, "zstd"))
