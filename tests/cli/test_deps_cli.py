"""``python -m shaman_addon deps``: table and JSON, exit codes, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from blendgen import ProductionInfo

REPO = Path(__file__).resolve().parents[2]


def deps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shaman_addon", "deps", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_json_is_one_document_on_stdout(every_kind_production: ProductionInfo) -> None:
    proc = deps(str(every_kind_production.main_blend), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["main_blend"] == str(every_kind_production.main_blend)
    assert data["project_root"] == str(every_kind_production.project_root)
    assert data["blend_checkout_path"] == "shots/main.blend"
    assert data["file_count"] == len(every_kind_production.expected_files) == len(data["files"])
    assert data["total_bytes"] == sum(f["size"] for f in data["files"])
    assert {f["original"] for f in data["files"]} == {
        str(p) for p in every_kind_production.expected_files}
    assert data["missing"] == []
    outside = {o["path"]: o for o in data["outside_project"]}
    assert outside[str(every_kind_production.outside_files[0])]["referenced_by"]
    assert any("Case.png" in w for w in data["warnings"])
    # the rewritten copies were temporary: each names the file on disk it was made from
    for f in data["files"]:
        if f["rewritten"]:
            assert f["source"] == f["original"] and Path(f["source"]).is_file()


def test_table(every_kind_production: ProductionInfo) -> None:
    proc = deps(str(every_kind_production.main_blend))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "shots/main.blend" in out
    assert "textures/udim/skin.1011.png" in out
    assert "_outside_project/" in out
    assert f"{len(every_kind_production.expected_files)} files" in out
    assert "WARNINGS" in out and "MISSING" not in out


def test_project_root_option(every_kind_production: ProductionInfo) -> None:
    proc = deps(str(every_kind_production.main_blend), "--json", "--project-root",
                str(every_kind_production.root))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["blend_checkout_path"] == "project/shots/main.blend"
    assert data["outside_project"] == []


def test_missing_files_are_listed_and_strict_fails(edge: dict[str, str]) -> None:
    proc = deps(edge["missing"])
    assert proc.returncode == 0, proc.stderr
    assert "MISSING (5)" in proc.stdout
    assert "used by " + edge["missing"] + ": IM gone rel" in proc.stdout
    strict = deps(edge["missing"], "--json", "--strict")
    assert strict.returncode == 3
    assert len(json.loads(strict.stdout)["missing"]) == 5


@pytest.mark.parametrize(
    "make, code, needle",
    [
        (lambda d: d / "absent.blend", 2, "absent.blend"),  # as submit says it
        (lambda d: (d / "text.blend").write_text("hello") and d / "text.blend", 1, "text.blend"),
    ],
)
def test_failures_exit_1_naming_the_file(tmp_path: Path, make, code: int, needle: str) -> None:
    path = make(tmp_path)
    proc = deps(str(path), "--json")
    assert proc.returncode == code
    doc = json.loads(proc.stdout)  # --json: the error is a JSON document too
    assert doc["exit_code"] == code and needle in doc["error"]
    assert needle in proc.stderr and "error:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_usage_errors_exit_2(every_kind_production: ProductionInfo, tmp_path: Path) -> None:
    assert deps().returncode == 2
    assert deps(str(every_kind_production.main_blend), "--no-such-option").returncode == 2
    bad_root = deps(str(every_kind_production.main_blend), "--project-root", str(tmp_path / "nope"))
    assert bad_root.returncode == 2
    assert "nope" in bad_root.stderr


def test_verbose_progress_goes_to_stderr(every_kind_production: ProductionInfo) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shaman_addon", "-v", "deps",
         str(every_kind_production.main_blend), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)  # stdout stays one JSON document
    assert "reading main.blend" in proc.stderr
    assert "rewriting main.blend" in proc.stderr
