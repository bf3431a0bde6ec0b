"""Replay a real Manager's recorded answers against the local server.

``data/real-manager-transcript.json`` holds 34 requests sent to a real Flamenco Manager
(3.9-beta1) from an empty store, with the status, Content-Type and body it answered and
the symlinks each step left under ``jobs/``. The local server in ``manager`` style must
give the same, byte for byte, once its storage folder is written as the recording's and
the random checkout suffix as the recorded one. This is what keeps the server honest:
the client's tests are only as good as the server's likeness to a real farm.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from shaman_server import ShamanServer

DATA = Path(__file__).resolve().parents[1] / "support" / "data"
TRANSCRIPT = DATA / "real-manager-transcript.json"
RECORDED_STORAGE = "/srv/farm/shared"

pytestmark = pytest.mark.local_server_only


def _load() -> dict[str, Any]:
    if not TRANSCRIPT.is_file():
        raise AssertionError(f"the recorded transcript is missing: {TRANSCRIPT}")
    return json.loads(TRANSCRIPT.read_text(encoding="utf-8"))


def _jobs_tree(storage: Path) -> dict[str, str]:
    """Everything under jobs/, as the recording writes it: 'dir' or '-> <link target>'."""
    tree: dict[str, str] = {}
    jobs = storage / "jobs"
    for folder, dirs, files in os.walk(jobs):
        for name in dirs + files:
            full = Path(folder) / name
            key = full.relative_to(storage).as_posix()
            tree[key] = f"-> {os.readlink(full)}" if full.is_symlink() else "dir"
    return tree


def _send(server: ShamanServer, request: dict[str, Any]) -> tuple[int, str | None, str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        body = request.get("body")
        conn.request(request["method"], request["path"],
                     body=body.encode("utf-8") if body is not None else None,
                     headers=request["headers"])
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read().decode()
    finally:
        conn.close()


def test_transcript_is_long_enough_to_mean_something() -> None:
    steps = _load()["steps"]
    assert len(steps) == 34
    statuses = {step["response"]["status"] for step in steps}
    assert {200, 208, 400, 417, 500} <= statuses


def test_replay_matches_real_manager(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    # A real Manager does not check checkout file paths; the recording includes two.
    server = ShamanServer(storage, style="manager", strict_paths=False).start()
    try:
        before = _jobs_tree(storage)
        suffixes: dict[str, str] = {}  # our random checkout path -> the recorded one
        mismatches: list[str] = []
        for number, step in enumerate(_load()["steps"]):
            expected = step["response"]
            status, content_type, body = _send(server, step["request"])
            body = body.replace(str(storage), RECORDED_STORAGE)
            if status == 200 and '"checkoutPath"' in body:
                ours = json.loads(body)["checkoutPath"]
                recorded = json.loads(expected["body"])["checkoutPath"]
                if ours != recorded and re.fullmatch(r".+-[a-z0-9]{4}", recorded):
                    assert ours[:-4] == recorded[:-4], (number, ours, recorded)
                    suffixes[ours] = recorded
                    body = body.replace(ours, recorded)
            got = (status, content_type, body)
            want = (expected["status"], expected["content_type"], expected["body"])
            if got != want:
                mismatches.append(f"step {number} ({step['label']}):\n  got  {got}\n"
                                  f"  want {want}")
            after = _jobs_tree(storage)
            added = {}
            for key, value in after.items():
                if key in before:
                    continue
                for ours, recorded in suffixes.items():
                    key = key.replace(f"jobs/{ours}", f"jobs/{recorded}")
                added[key] = value
            if added != step["jobs_added"]:
                mismatches.append(f"step {number} ({step['label']}) jobs/:\n  got  {added}\n"
                                  f"  want {step['jobs_added']}")
            before = after
        assert not mismatches, "\n".join(mismatches)
    finally:
        server.stop()


def test_every_recorded_symlink_resolves_to_the_recorded_content(tmp_path: Path) -> None:
    """After the replay, each checkout link opens the blob whose checksum it was made for."""
    storage = tmp_path / "storage"
    with ShamanServer(storage, strict_paths=False) as server:
        for step in _load()["steps"]:
            _send(server, step["request"])
    links = [p for p in (storage / "jobs").rglob("*") if p.is_symlink()]
    assert len(links) >= 8
    for link in links:
        blob = link.resolve()
        assert blob.is_relative_to(storage / "file-store" / "stored")
        sha = blob.parent.parent.name + blob.parent.name
        size = int(blob.name.removesuffix(".blob"))
        data = blob.read_bytes()
        assert len(data) == size
        assert hashlib.sha256(data).hexdigest() == sha
