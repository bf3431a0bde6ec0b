"""Long lists on the command line (issue 14): a .blend with 10,000 missing files.

The words name the first ``present.LIST_SHOWN`` entries, count the rest and say where the
whole list is; ``--json`` and the history file hold every entry. Real processes, a real
.blend made by bpy, the local server over loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from shaman_addon.app.present import LIST_SHOWN

REPO = Path(__file__).resolve().parents[2]
MANY = 10_000  # tests/conftest.py: MANY_MISSING


def cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SHAMAN_SERVER_URL"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return subprocess.run([sys.executable, "-m", "shaman_addon", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _missing_block(text: str) -> list[str]:
    """The lines of the MISSING block in ``text``: its header, entries, the count line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("MISSING ("))
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        block.append(line)
    return block


def test_a_dry_run_names_twenty_missing_files_and_json_and_history_hold_all(
    many_missing_blend: Path, shaman_server: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    out = cli("submit", str(many_missing_blend), "--server", shaman_server.url, "--dry-run",
              "--json", "--cache-dir", str(cache), "--quiet", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    paths = [m["path"] for m in doc["missing"]]
    assert len(paths) == len(set(paths)) == MANY
    history = cache / "history.jsonl"
    record = json.loads(history.read_text().splitlines()[-1])
    assert [m["path"] for m in record["missing"]] == paths

    block = _missing_block(out.stderr)
    assert block[0] == "MISSING (10,000): used but not on disk:"
    named = [line[2:].split(" (used by ")[0] for line in block[1:-1]]
    assert named == paths[:LIST_SHOWN]
    assert block[-1] == (f"  ... and {MANY - LIST_SHOWN:,} more: the full list is in the "
                         f"history file {history} and the output of --json")


def test_fail_on_missing_keeps_every_missing_file_in_json_and_history(
    many_missing_blend: Path, shaman_server: Any, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    out = cli("submit", str(many_missing_blend), "--server", shaman_server.url,
              "--fail-on-missing", "--json", "--cache-dir", str(cache), "--quiet",
              tmp_path=tmp_path)
    assert out.returncode == 3, out.stderr
    doc = json.loads(out.stdout)
    assert doc["error_type"] == "MissingDependencies" and len(doc["missing"]) == MANY
    record = json.loads((cache / "history.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "failed"
    assert sorted(m["path"] for m in record["missing"]) == sorted(
        m["path"] for m in doc["missing"])
    assert out.stderr.rstrip().endswith(
        f"Every missing file is listed in the history file {cache / 'history.jsonl'} and "
        "the output of --json.")


def test_deps_names_twenty_and_points_to_its_json(many_missing_blend: Path,
                                                  tmp_path: Path) -> None:
    out = cli("deps", str(many_missing_blend), tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    block = _missing_block(out.stdout)
    assert block[0] == "MISSING (10,000): used but not on disk:"
    assert len(block) == 1 + LIST_SHOWN + 1
    assert block[-1] == (f"  ... and {MANY - LIST_SHOWN:,} more: the full list is in the "
                         "output of --json")
    assert out.stdout.rstrip().endswith("10000 missing, 0 outside the project")
