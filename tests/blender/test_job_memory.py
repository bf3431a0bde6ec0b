"""The render-job choice remembered per .blend (plain Python, no Blender)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shaman_addon.blender import job_memory
from shaman_addon.blender.job_memory import ChoiceMemory


def test_a_choice_is_remembered_per_file_and_an_unsaved_file_is_not(tmp_path: Path) -> None:
    memory = ChoiceMemory(tmp_path / "user" / "choices.json")
    assert memory.get("/p/a.blend") == {}  # nothing yet, no file yet
    memory.put("/p/a.blend", {"job_type": "simple-blender-render", "priority": 70})
    memory.put("/p/b.blend", {"job_type": ""})
    memory.put("", {"job_type": "never"})
    again = ChoiceMemory(tmp_path / "user" / "choices.json")  # another session
    assert again.get("/p/a.blend") == {"job_type": "simple-blender-render", "priority": 70}
    assert again.get("/p/b.blend") == {"job_type": ""}
    assert again.get("") == {}
    assert [p.name for p in (tmp_path / "user").iterdir()] == ["choices.json"]  # no temp left


def test_the_oldest_files_are_forgotten_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_memory, "MAX_FILES", 3)
    memory = ChoiceMemory(tmp_path / "choices.json")
    for name in ("a", "b", "c"):
        memory.put(f"/{name}.blend", {"n": name})
    memory.put("/a.blend", {"n": "a2"})  # written again: the newest
    memory.put("/d.blend", {"n": "d"})
    assert memory.get("/b.blend") == {}
    assert [memory.get(f"/{n}.blend").get("n") for n in "acd"] == ["a2", "c", "d"]


def test_a_damaged_or_foreign_memory_file_reads_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "choices.json"
    for text in ("{not json", "[1, 2]", '{"/a.blend": "not a record"}'):
        path.write_text(text)
        assert ChoiceMemory(path).get("/a.blend") == {}
    ChoiceMemory(path).put("/a.blend", {"job_type": "x"})  # replaced by a good one
    assert ChoiceMemory(path).get("/a.blend") == {"job_type": "x"}
