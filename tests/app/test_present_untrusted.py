"""What reaches a terminal from a .blend or a server is escaped and capped
(``app.present`` through ``untrusted.shown``; issue 13, item 7)."""

from __future__ import annotations

from shaman_addon.app.present import error_line, missing_lines
from shaman_addon.collect.plan import MissingFile
from shaman_addon.errors import ServerError


def test_missing_paths_from_a_blend_cannot_forge_lines_or_escape() -> None:
    evil = "//tex/\x1b]0;owned\x07\nerror: fake line.png"
    lines = missing_lines([MissingFile(evil, ("scene.blend\x1b[31m",))])
    assert len(lines) == 2
    assert all(c.isprintable() for line in lines for c in line)
    assert "\\x1b]0;owned\\x07\\x0aerror: fake line.png" in lines[1]


def test_error_lines_are_one_capped_line() -> None:
    line = error_line(ServerError("bad\r\nnews " + "x" * 100_000, url="http://m", status=500))
    assert "\n" not in line and "\r" not in line and len(line) < 4100
    assert "more characters" in line


def test_job_types_from_the_manager_are_escaped() -> None:
    from shaman_addon.app.present import job_types_lines
    from shaman_addon.jobs.catalog import CACHE_FORMAT, ManagerInfo

    info = ManagerInfo.from_json({"format": CACHE_FORMAT, "url": "http://m", "job_types": [],
                                  "worker_tags": [{"id": "1", "name": "gpu\x1b[2J\nfake"}]})
    lines = job_types_lines(info)
    assert all(c.isprintable() for line in lines for c in line)
    assert "gpu\\x1b[2J\\x0afake" in lines[-1]
