"""The benchmark's productions (benchmarks/bench_data.py) and the generator option they use
for the 100,000-file case: how many bulk images the main .blend holds. Productions
cached before the option existed keep their names and their split."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

from blendgen import bulk_shares, generate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_data


def _old_split(files: int, libraries: int) -> list[int]:
    """The split every cached production was made with."""
    owners = 1 + libraries
    share = [files // owners] * owners
    share[0] += files - sum(share)
    return share


@pytest.mark.parametrize(("files", "libraries"), [(0, 0), (1, 0), (3000, 20), (30000, 20),
                                                   (10000, 0), (300, 20), (7, 3)])
def test_default_split_is_unchanged(files: int, libraries: int) -> None:
    assert bulk_shares(files, libraries) == _old_split(files, libraries)


def test_main_images_go_to_main_and_the_rest_is_spread() -> None:
    share = bulk_shares(100_000, 20, 30_000)
    assert share[0] == 30_000
    assert share[1:] == [3_500] * 20
    assert bulk_shares(10, 3, 3) == [3, 3, 2, 2]
    assert sum(bulk_shares(10, 3, 3)) == 10
    assert bulk_shares(5, 2, 50) == [5, 0, 0]  # capped at the files there are
    assert bulk_shares(5, 0, 2) == [5]  # no library: main holds them all


def test_cached_production_names_are_unchanged() -> None:
    assert bench_data.Spec(3000, 500_000_000).name == "prod-f3000-b500000000-l20-all-s0"
    assert bench_data.Spec(1, 4096, 0, "basic", big_file_bytes=2 << 30).name == (
        "prod-f1-b4096-l0-basic-s0-big2147483648")
    assert bench_data.Spec(100_000, 409_600_000, main_images=30_000).name == (
        "prod-f100000-b409600000-l20-all-s0-m30000")


@pytest.mark.slow
def test_generator_puts_main_images_in_main(tmp_path: Path) -> None:
    info = generate(tmp_path / "prod", libraries=2, files=10, total_bytes=10 * 100,
                    kinds="basic", main_images=7)
    owners = Counter(p.relative_to(info.project_root / "bulk").parts[0]
                     for p in info.kinds["bulk"])
    assert owners == {"main": 7, "lib_00": 2, "lib_01": 1}
    assert all(p.is_file() for p in info.kinds["bulk"])
    assert set(info.kinds["bulk"]) <= set(info.expected_files)
    # main.blend names each of its own bulk files (images with a fake user)
    import zstandard

    with open(info.main_blend, "rb") as f:  # zstd in several frames, as Blender 5 saves
        main_bytes = zstandard.ZstdDecompressor().stream_reader(
            f, read_across_frames=True).read()
    assert main_bytes.startswith(b"BLENDER")
    for p in info.kinds["bulk"]:
        assert (p.name.encode() in main_bytes) == (p.parts[-3] == "main"), p
