"""A collection reused from its record (collect/snapshot.py) must be the collection a
fresh one makes, whatever changed on disk since: the record is used only while nothing
it was decided from differs, and a reused plan is compared here with a fresh one after
each kind of change an artist's disk sees between two submissions.

All on a copy of the real every-kind production (made by bpy)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from shaman_addon.collect.collector import collect
from shaman_addon.errors import Cancelled

from blendgen import ProductionInfo


class Run:
    """One collect() with what it handed out and whether it read any .blend."""

    def __init__(self, blend: Path, cache: Path | None, **kw: object) -> None:
        self.messages: list[str] = []
        self.streamed: list[tuple[str, int, int]] = []
        self.plan = collect(blend, cache_dir=cache, on_progress=self.messages.append,
                            on_file=lambda f, st: self.streamed.append(
                                (f.checkout_path, f.size, st.st_size)), **kw)

    @property
    def reused(self) -> bool:
        return not any(m.startswith("reading ") for m in self.messages)

    def summary(self) -> dict:
        data = self.plan.to_json()
        for f in data["files"]:
            f.pop("source")  # a rewritten copy's place differs between cache and none
        return data


@pytest.fixture
def shot(tmp_path: Path, every_kind_production: ProductionInfo) -> Path:
    """A copy of the every-kind production's project; its main .blend."""
    copy = tmp_path / "prod"
    shutil.copytree(every_kind_production.root, copy, symlinks=True)
    return copy / every_kind_production.main_blend.relative_to(every_kind_production.root)


def _same_as_fresh(blend: Path, cache: Path) -> Run:
    again = Run(blend, cache)
    fresh = Run(blend, None)
    try:
        assert again.summary() == fresh.summary()
        assert sorted(again.streamed) == sorted(fresh.streamed)
    finally:
        again.plan.cleanup()
        fresh.plan.cleanup()
    return again


def _textures(blend: Path, first: Run) -> list[Path]:
    """Plain files of the project (no .blend), as the first run placed them."""
    root = blend.parent.parent
    return sorted(Path(f.original_path) for f in first.plan.files
                  if not f.original_path.endswith(".blend")
                  and f.original_path.startswith(str(root) + "/"))


def _listed_folder(blend: Path, first: Run) -> Path:
    """A folder holding several files of one sequence-like reference (frames, tiles)."""
    by_folder: dict[str, int] = {}
    for f in first.plan.files:
        if "seq" in f.original_path or "udim" in f.original_path.lower():
            by_folder[os.path.dirname(f.original_path)] = by_folder.get(
                os.path.dirname(f.original_path), 0) + 1
    folder = max(by_folder, key=lambda k: by_folder[k])
    assert by_folder[folder] > 1, by_folder
    return Path(folder)


def _repaint(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"more paint")  # same file, new size and bytes


def _save_over(path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")  # what painting programs do: a new file
    tmp.write_bytes(path.read_bytes()[::-1])
    os.replace(tmp, path)


CHANGES: dict[str, tuple[Callable[[Path, Run], None], bool]] = {
    # name: (the change, whether the record can still be used)
    "nothing": (lambda blend, first: None, True),
    "a texture repainted in place": (lambda b, f: _repaint(_textures(b, f)[0]), True),
    "a texture saved over (new inode)": (lambda b, f: _save_over(_textures(b, f)[-1]), True),
    "a texture deleted": (lambda b, f: _textures(b, f)[1].unlink(), False),
    "a frame added to a sequence": (
        lambda b, f: (_listed_folder(b, f) / "extra_9999.png").write_bytes(b"x"), False),
    "a library saved": (
        lambda b, f: os.utime(next(Path(p.original_path) for p in f.plan.files
                                   if p.original_path.endswith(".blend")
                                   and Path(p.original_path) != b), ns=(1, 1)), False),
    "a texture folder moved out and linked back": (
        lambda b, f: _link_elsewhere(_textures(b, f)[0].parent), False),
    "a texture made read-only for all": (lambda b, f: _textures(b, f)[2].chmod(0o000), False),
    "a texture replaced by a link to another file": (
        lambda b, f: _relink(_textures(b, f)[3], _textures(b, f)[4]), False),
}


def _link_elsewhere(folder: Path) -> None:
    away = folder.parent.parent.parent / f"away-{folder.name}"
    shutil.move(folder, away)
    folder.symlink_to(away, target_is_directory=True)


def _relink(path: Path, other: Path) -> None:
    path.unlink()
    path.symlink_to(other)


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_reused_collection_is_what_a_fresh_one_finds(shot: Path, tmp_path: Path,
                                                       name: str) -> None:
    cache = tmp_path / "cache"
    first = Run(shot, cache)
    first.plan.cleanup()
    assert not first.reused
    change, still_valid = CHANGES[name]
    change(shot, first)
    again = _same_as_fresh(shot, cache)
    assert again.reused is still_valid
    if still_valid:  # and the record goes on being used
        assert _same_as_fresh(shot, cache).reused


def test_a_damaged_or_foreign_record_is_not_used(shot: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    Run(shot, cache).plan.cleanup()
    (record,) = (cache / "collections").iterdir()
    good = record.read_bytes()
    for bad in (b"", b"{", b"[]", good[: len(good) // 2], good.replace(b'"plain"', b'"x"'),
                good.replace(b'"count":', b'"count":1'),  # more files than rows
                b'{"format": 1, "main": 3}'):
        record.write_bytes(bad)
        assert not _same_as_fresh(shot, cache).reused
    record.write_bytes(good)
    assert _same_as_fresh(shot, cache).reused


def test_other_settings_keep_their_own_record(shot: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    Run(shot, cache).plan.cleanup()
    other = Run(shot, cache, as_name="renamed.blend")
    other.plan.cleanup()
    assert not other.reused
    assert len(list((cache / "collections").iterdir())) == 2
    again = Run(shot, cache)
    again.plan.cleanup()
    assert again.reused


def test_cancel_while_the_record_is_checked_stops_the_collection(
        shot: Path, tmp_path: Path) -> None:
    import threading

    cache = tmp_path / "cache"
    Run(shot, cache).plan.cleanup()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        collect(shot, cache_dir=cache, cancel=cancel)


@pytest.mark.parametrize("rows", [1, 5, 7])
def test_a_record_written_in_chunks_reads_back_whole(shot: Path, tmp_path: Path, rows: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The file rows are written a chunk at a time (bounded memory): whatever the chunk
    size, the record holds every file."""
    from shaman_addon.collect import snapshot

    monkeypatch.setattr(snapshot, "CHUNK_ROWS", rows)
    cache = tmp_path / "cache"
    Run(shot, cache).plan.cleanup()
    assert _same_as_fresh(shot, cache).reused


def test_records_are_bounded_and_the_last_used_are_kept(
        shot: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A temporary copy of unsaved work has a new name each time: its records must not
    pile up in the cache folder."""
    from shaman_addon.collect import snapshot

    monkeypatch.setattr(snapshot, "KEEP", 2)
    cache = tmp_path / "cache"
    Run(shot, cache).plan.cleanup()  # the record of the shot itself
    for i, when in enumerate((1_000, 2_000, 3_000)):
        (cache / "collections").joinpath(f"{i}.json").write_text("{}")
        os.utime(cache / "collections" / f"{i}.json", (when, when))
    assert _same_as_fresh(shot, cache).reused  # used now: the newest
    other = Run(shot, cache, as_name="unsaved copy.blend")  # written now too
    other.plan.cleanup()
    names = sorted(p.name for p in (cache / "collections").iterdir())
    assert len(names) == 2 and not {"0.json", "1.json", "2.json"} & set(names)
    assert _same_as_fresh(shot, cache).reused
