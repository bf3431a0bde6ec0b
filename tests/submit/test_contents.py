"""The submission's file index (submit/contents.py): the list of checksums it hands out
for the requirements calls and the checkout must always be the current one, though it
is made only once while nothing changes."""

from __future__ import annotations

from shaman_addon.collect.plan import PlanFile
from shaman_addon.submit.checksums import FileStat
from shaman_addon.submit.contents import Contents

SHA_A, SHA_B = "a" * 64, "b" * 64


def _files(n: int) -> tuple[list[PlanFile], list[FileStat]]:
    files = [PlanFile.of(f"/p/f{i}.png", f"f{i}.png", 10 + i) for i in range(n)]
    return files, [FileStat(f.source_path, f.size, 1, 1, i) for i, f in enumerate(files)]


def test_the_checksum_list_is_made_once_while_nothing_changes() -> None:
    contents = Contents()
    files, stats = _files(5)
    contents.add_found(files, stats, [SHA_A] * 5)
    first = contents.specs(files)
    assert [(s.sha, s.size, s.path) for s in first] == [
        (SHA_A, f.size, f.checkout_path) for f in files]
    assert contents.specs(files) is first  # asked again: the same list
    assert contents.specs(list(files)) is not first  # another list of files: made afresh


def test_a_new_checksum_or_file_gives_a_fresh_list() -> None:
    contents = Contents()
    files, stats = _files(4)
    contents.add_found(files, stats, [SHA_A] * 4)
    before = contents.specs(files)
    entry = contents.entries_of(files[2].source_path)[0]
    contents.set_checksum(entry, SHA_B, files[2].size, stats[2])  # re-hashed after a 417
    after = contents.specs(files)
    assert after is not before
    assert [s.sha for s in after] == [SHA_A, SHA_A, SHA_B, SHA_A]
    assert [s.sha for s in before] == [SHA_A] * 4  # a list handed out is never changed

    again = PlanFile.of(files[1].source_path, files[1].checkout_path, 99)
    contents.add_found([again], [FileStat(again.source_path, 99, 2, 2, 1)], [SHA_B])
    files[1] = again  # the finished plan holds the file handed in last
    assert [(s.sha, s.size) for s in contents.specs(files)][1] == (SHA_B, 99)
