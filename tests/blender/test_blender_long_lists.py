"""The Blender layer with 10,000 missing files (issue 14): the property group stores and
the panel draws at most ``present.LIST_SHOWN`` of them, with the count and where the
whole list is (the history file, which holds all); a finished worker's long queue is
worked off tick by tick. Real bpy in a subprocess, a real .blend, the local server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from blender_scripts.runner import run_bpy

from shaman_addon.app.present import LIST_SHOWN

MANY = 10_000  # tests/conftest.py: MANY_MISSING


def test_ten_thousand_missing_files_store_and_draw_twenty_and_the_history_has_all(
    many_missing_blend: Path, shaman_server: Any, tmp_path: Path
) -> None:
    run = run_bpy("scale_scenario.py", "long_lists", json.dumps({
        "blend": str(many_missing_blend), "server_url": shaman_server.url, "events": 1000,
    }), user_dir=tmp_path / "blender-user")
    assert run.returncode == 0 and run.result is not None, run.explain()
    res = run.result
    assert res["headless_call"] == {"raised": False, "error": "", "ret": ["FINISHED"]}

    # Both ways a person submits: the whole list went to the history, twenty were stored.
    assert len(res["history"]) == 2
    everything = res["history"][0]
    assert len(everything) == len(set(everything)) == MANY
    assert res["history"][1] == everything
    more = (f"... and {MANY - LIST_SHOWN:,} more: the full list is in the history file "
            f"{res['history_file']}")
    for key in ("headless", "interactive"):
        st = res[key]
        assert st["result_ok"], st["error"]
        assert st["missing"] == everything[:LIST_SHOWN], key
        assert st["missing_total"] == MANY and st["more_missing"] == more
    assert res["interactive"]["finished"]

    # The panel, missing list open: the count, twenty rows, the line saying the rest.
    panel = res["panel"]
    assert f"prop:show_missing:Missing files: {MANY:,}" in panel
    assert [t for t in panel if t.endswith(".png")] == everything[:LIST_SHOWN]
    drawn = "".join(t.replace(" ", "") for t in panel)  # wrapped over rows of 60
    assert more.replace(" ", "") in drawn

    # 1,000 snapshots and the final one queued behind a finished worker, zero budget:
    # one snapshot per tick, and finished only with the final one applied.
    q = res["long_queue"]
    assert q["answers_false"] == 1000 and q["last"] is True
    assert q["files_done_seen"] == [0, 1, 2, 999, 1000]
    assert q["phase"] == "done" and q["status_line"] == "all sent"
