"""Uploads stream from disk: resident memory stays flat for any file size.

Each size runs in its own process without bpy (``upload_memory_probe.py``) against the
local server, which runs here in the test process; the probe measures its own peak.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).resolve().parents[1] / "support" / "upload_memory_probe.py"
GIB = 1024**3
LIMIT_KIB = 64 * 1024


@pytest.mark.slow
@pytest.mark.local_server_only
@pytest.mark.parametrize("size", [1 * GIB, 4 * GIB], ids=["1GiB", "4GiB"])
def test_upload_memory_stays_flat(shaman_server: Any, tmp_path: Path, size: int) -> None:
    run = subprocess.run(
        [sys.executable, str(PROBE), "--url", shaman_server.url, "--size", str(size),
         "--dir", str(tmp_path / "probe")],
        capture_output=True, text=True, timeout=1800, check=False)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"\nupload memory probe: {report}")
    blob = shaman_server.stored_path(report["sha"], size)
    try:
        assert report["bpy_imported"] is False
        assert report["result"] == "stored"
        assert report["bytes_reported"] == size
        assert shaman_server.counters.bytes_received_by_file[(report["sha"], size)] == size
        assert blob.stat().st_size == size
        assert report["growth_kib"] < LIMIT_KIB, report
    finally:
        blob.unlink(missing_ok=True)  # 4 GiB of real zeros on the server's disk
