"""Temporary copies of unsaved work and the crash-leftover ledger (plain Python)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shaman_addon.blender import tempcopies


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def _entries(ledger: tempcopies.Ledger) -> list[Path]:
    """What the ledger file lists (as the next start reads it)."""
    return [Path(line) for line in ledger.path.read_text(encoding="utf-8").splitlines()]


def test_temp_copy_names_are_hidden_unique_and_carry_the_owner(tmp_path: Path) -> None:
    original = tmp_path / "shot 01.blend"
    a, b = tempcopies.temp_copy_path(original), tempcopies.temp_copy_path(original)
    assert a != b and a.parent == tmp_path
    assert a.name.startswith(".shaman-unsaved-") and a.name.endswith("-shot 01.blend")
    assert tempcopies.owner_pid(a) == os.getpid()
    assert tempcopies.owner_pid(original) is None


def test_the_ledger_removes_what_a_dead_blender_left_and_keeps_live_copies(tmp_path: Path) -> None:
    dead = _dead_pid()
    assert not tempcopies.pid_alive(dead) and tempcopies.pid_alive(os.getpid())
    original = tmp_path / "main.blend"
    left = tempcopies.temp_copy_path(original, pid=dead)
    live = tempcopies.temp_copy_path(original)
    artist = tmp_path / "not-ours.blend"  # never deleted, even when listed
    for p in (left, live, artist):
        p.write_bytes(b"BLENDER")
    ledger = tempcopies.Ledger(tmp_path / "user" / "temporary-copies.txt")
    for p in (left, live, artist):
        ledger.add(p)
    removed = ledger.cleanup_leftovers()
    assert removed == [left]
    assert not left.exists() and live.exists() and artist.exists()
    assert _entries(ledger) == [live]
    tempcopies.remove_copy(live, ledger)
    assert not live.exists() and _entries(ledger) == []


def test_sweep_removes_leftovers_beside_the_file_even_without_a_ledger(tmp_path: Path) -> None:
    dead = _dead_pid()
    left = tempcopies.temp_copy_path(tmp_path / "a.blend", pid=dead)
    live = tempcopies.temp_copy_path(tmp_path / "a.blend")
    other = tmp_path / ".shaman-unsaved-notes.txt"
    for p in (left, live, other):
        p.write_bytes(b"x")
    assert tempcopies.sweep_dir(tmp_path) == [left]
    assert live.exists() and other.exists()
