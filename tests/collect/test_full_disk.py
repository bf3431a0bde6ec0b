"""A full disk while rewritten copies are written (issue 13, item 8): the rewrite cache
keeps no partial ``.tmp`` file, and a temporary copy that cannot be written is a clear
error naming the .blend, with no ``shaman-pack-*`` folder left.

The full disk is real: a tmpfs of 1 MiB mounted by the test (as root), filled up to a
few kB. Without the right to mount, the same write failure comes from a seam on
``Path.write_bytes`` (half the bytes written, then ENOSPC) for paths on that folder.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shaman_addon.collect.collector import collect
from shaman_addon.errors import TemporaryCopyFailed

from fault_blends import make_blend

LEFT_FREE = 8 << 10


@pytest.fixture(scope="module")
def outside_blend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .blend using a file outside its project: it is always sent as a rewritten copy."""
    base = tmp_path_factory.mktemp("fulldisk")
    (base / "project" / ".blender_project").mkdir(parents=True)
    (base / "elsewhere").mkdir()
    (base / "elsewhere" / "tex.png").write_bytes(b"texture")
    return make_blend(base / "project" / "shot.blend", [str(base / "elsewhere" / "tex.png")])


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    try:
        if mounted:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            (folder / "filler").write_bytes(b"\0" * max(0, free - LEFT_FREE))
        else:
            _seam(monkeypatch, folder)
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def _seam(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    real = Path.write_bytes

    def write_bytes(self: Path, data: Any) -> int:
        if not str(self).startswith(str(folder)) or len(data) <= LEFT_FREE:
            return real(self, data)
        real(self, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.endswith(".tmp") or p.name.startswith("shaman-pack-"))


def test_rewrite_cache_on_a_full_disk_leaves_no_tmp(
        outside_blend: Path, full_disk: Path, tmp_path: Path,
        fault_row: Callable[..., Any]) -> None:
    plan = collect(outside_blend, cache_dir=full_disk / "cache", temp_dir=tmp_path / "tmp")
    try:
        main = plan.files[0]
        assert main.rewritten and main.source.is_file()
        assert main.source.is_relative_to(tmp_path / "tmp")  # the cache had no room
    finally:
        plan.cleanup()
    assert _leftovers(full_disk) == []
    fault_row("full disk under the rewrite cache", area="fault",
              saw="the submission goes on (the copy is made in the temp folder, a warning "
              "is logged)", end_state="no .tmp file in the cache folder")


def test_temporary_copy_on_a_full_disk_is_a_clear_error(
        outside_blend: Path, full_disk: Path, fault_row: Callable[..., Any]) -> None:
    with pytest.raises(TemporaryCopyFailed) as caught:
        collect(outside_blend, temp_dir=full_disk / "tmp")
    text = str(caught.value)
    assert str(outside_blend) in text and "space" in text.lower()
    assert _leftovers(full_disk) == []
    assert not any((full_disk / "tmp").iterdir())
    fault_row("full disk under the temporary folder", area="fault", saw=text,
              end_state="no shaman-pack-* folder and no partial copy left")
