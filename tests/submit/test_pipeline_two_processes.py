"""Two artists submit the same production at the same moment, from two processes.

The production is a real .blend (a template from ``blend_templates``) whose cache folder
holds the test's files; each process collects it like the command line does. Each has
its own checksum cache (warmed by a dry run, so both send the same one
requirements call and then upload in the same order). The defer header must keep the
server from receiving the same bytes twice: it answers 425 to the later sender, which
waits and then finds the content stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from blend_templates import Project, Templates

HELPER = Path(__file__).resolve().parents[1] / "support" / "submit_process.py"
SAFETY_S = 300


def _make_production(templates: Templates, root: Path) -> Project:
    prod = Project(templates, root, [])
    for i in range(6):  # big enough that one upload is still running when the other asks
        prod.add(f"big_{i}.exr", os.urandom(12 << 20))
    for i in range(40):
        prod.add(f"small_{i:02d}.png", os.urandom(20_000 + i))
    return prod


def _spawn(server: Any, cache: Path, blend: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HELPER), "--server", server.url, "--cache-dir", str(cache),
         "--blend", str(blend), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=SAFETY_S)
    lines = [line for line in out.splitlines() if line.strip() and line != "ready"]
    assert proc.returncode == 0, f"{out}\n{err}"
    return json.loads(lines[-1])


@pytest.mark.local_server_only
@pytest.mark.slow
def test_two_processes_share_the_work(shaman_server: Any, blend_templates: Templates,
                                      tmp_path: Path) -> None:
    server = shaman_server
    prod = _make_production(blend_templates, tmp_path / "production")
    root = prod.project
    files = [p for p in root.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    caches = [tmp_path / "cache-a", tmp_path / "cache-b"]
    for cache in caches:  # warm each cache: the real runs then start with ONE call each
        _finish(_spawn(server, cache, prod.blend, "--dry-run"))
    server.counters.reset()

    barrier = tmp_path / "go"
    procs = [_spawn(server, cache, prod.blend, "--barrier", str(barrier)) for cache in caches]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    barrier.touch()
    results = [_finish(proc) for proc in procs]

    for p in files:
        data = p.read_bytes()
        assert server.is_stored(hashlib.sha256(data).hexdigest(), len(data)), p
    counters = server.counters
    assert counters.statuses.get(("upload", 425), 0) >= 1
    assert counters.bytes_received <= 1.1 * total, (counters.bytes_received, total)
    # Between them they sent everything once; each got its own checkout.
    assert sum(r["bytes_uploaded"] for r in results) <= 1.1 * total
    assert len({r["checkout_path"] for r in results}) == 2
    for r in results:
        folder = server.storage / "jobs" / r["checkout_path"]
        assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                      if not p.is_dir()) == sorted(p.relative_to(root).as_posix()
                                                   for p in files)
