"""Hostile .blend files (issue 13, items 1 and 2): damaged or crafted files made from real
.blend files saved by Blender, each traced in a worker process with a guard against
hangs and an address-space limit against memory blow-ups (``blend_fuzz``).

Every variant must end in a trace or an error of the BlendFileError family, quickly and
in bounded memory; Ctrl-C must end the command line even while tracing is stuck.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import blend_fuzz
from blend_templates import Project, Templates

REPO = Path(__file__).resolve().parents[2]
GUARD_S = 60.0  # per variant: only a guard against a hang (each takes milliseconds)
TRUNCATIONS = 30  # per seed file
FLIPS = 100  # per seed file
PEAK_RSS_BOUND_MB = 400  # a worker tracing a few hundred variants (Python + BAT ~ 90 MB)
BOMB_EXTRA = (1 << 30) + (8 << 20)  # zeros after a real .blend: past the 1 GiB ceiling


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return blend_fuzz.make_seeds(tmp_path_factory.mktemp("fuzz-seeds"))


def _ok(outcome: str) -> bool:
    return outcome == "traced" or outcome.startswith("BlendFileError:")


def test_fuzzed_blends_end_in_a_trace_or_a_blend_error(
        seeds: dict[str, Path], tmp_path: Path, fault_row: Any) -> None:
    """Truncations and single-byte changes of plain, gzip and zstd files, plus the named
    cases that hung BAT 1.23 (a damaged DNA count, a list that loops)."""
    files = blend_fuzz.write_variants(seeds, tmp_path / "v", truncations=TRUNCATIONS,
                                      flips=FLIPS)
    plain = seeds["plain"].read_bytes()
    for how in blend_fuzz.SEED_NAMES:
        files.append(tmp_path / "v" / f"named-dna-count-{how}.blend")
        files[-1].write_bytes(blend_fuzz.compress(blend_fuzz.damaged_names_count(plain), how))
    files.append(tmp_path / "v" / "named-looping-list.blend")
    files[-1].write_bytes(blend_fuzz.looping_modifiers(seeds["plain"]))
    result = blend_fuzz.run_fuzz(files, guard_s=GUARD_S)
    bad = {n: o for n, o in result.outcomes.items() if not _ok(o)}
    assert result.hung == [] and bad == {}
    assert set(result.outcomes) == {p.name for p in files}
    assert result.outcomes["named-dna-count-zstd.blend"].endswith("BlendCatalogueTooLarge")
    assert result.outcomes["named-looping-list.blend"].endswith("BlendListLoops")
    assert result.peak_rss_mb < PEAK_RSS_BOUND_MB
    slowest, seconds = result.slowest
    kinds = Counter(o.split(":")[-1] for o in result.outcomes.values())
    fault_row(f"{len(files)} damaged .blend files (truncated, one byte changed; plain, gzip, "
              "zstd; a DNA count that hung BAT, a list that loops)", area="bad input",
              saw=result.messages["named-dna-count-zstd.blend"],
              end_state="every variant traced or refused with a BlendFileError; none hung",
              measured={"variants": len(files), **dict(kinds), "slowest": slowest,
                        "slowest_s": seconds, "peak_rss_mb": result.peak_rss_mb})


def test_a_small_file_expanding_past_the_ceiling_is_refused_in_bounded_memory(
        seeds: dict[str, Path], tmp_path: Path, fault_row: Any) -> None:
    """A real .blend followed by 1 GiB of zeros, compressed to a few hundred KB: read as a
    stream up to the ceiling and refused, never held in memory (BAT 1.23 read the zstd one
    whole: a MemoryError under the worker's limit). gzip: tests/collect, with a lower
    ceiling (1 GiB of gzip takes seconds to inflate)."""
    how = "zstd"
    path = tmp_path / f"bomb-{how}.blend"
    path.write_bytes(blend_fuzz.bomb(seeds["plain"].read_bytes(), how, BOMB_EXTRA))
    result = blend_fuzz.run_fuzz([path], guard_s=GUARD_S)
    assert result.outcomes[path.name] == "BlendFileError:BlendTooLarge"
    message = result.messages[path.name]
    assert str(path) in message and "1024 MiB" in message
    assert result.peak_rss_mb < 200
    fault_row(f"a {path.stat().st_size // 1024} KB {how} .blend expanding past 1 GiB",
              area="bad input", saw=message,
              end_state="refused at the decompression ceiling, no trace",
              measured={"peak_rss_mb": result.peak_rss_mb,
                        "seconds": result.seconds[path.name]})


_STUCK_TRACE = """
import sys, threading
sys.path.insert(0, {repo!r})
from shaman_addon.collect import collector

def stuck(self, path):
    print("tracing is stuck", file=sys.stderr, flush=True)
    threading.Event().wait()  # like BAT looping inside a damaged file: never returns

collector._Collector.trace = stuck
"""


@pytest.mark.local_server_only
def test_ctrl_c_ends_the_command_line_while_tracing_is_stuck(
        shaman_server: Any, blend_templates: Templates, tmp_path: Path,
        fault_row: Any) -> None:
    """A collector that cannot be interrupted is abandoned, not waited for: Ctrl-C ends
    ``submit`` (exit code 130, "cancelled"), nothing reaches the server."""
    project = Project(blend_templates, tmp_path, [1000])
    seam = tmp_path / "seam"
    seam.mkdir()
    (seam / "sitecustomize.py").write_text(_STUCK_TRACE.format(repo=str(REPO)))
    env = {**os.environ, "PYTHONPATH": str(seam), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop("SHAMAN_SERVER_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "shaman_addon", "submit", str(project.blend),
         "--server", shaman_server.url], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    lines: list[str] = []
    stuck = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "tracing is stuck" in line:
                stuck.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    assert stuck.wait(GUARD_S), "".join(lines)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=GUARD_S)  # only a guard: before the fix it never ended
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(GUARD_S)
    err = "".join(lines)
    assert proc.returncode == 130, err
    assert "cancelled" in err and "Traceback" not in err
    assert shaman_server.counters.requests.get("upload", 0) == 0
    assert shaman_server.counters.checkouts == []
    fault_row("Ctrl-C while tracing a .blend is stuck (inside BAT, uninterruptible)",
              saw=err.strip().splitlines()[-1],
              end_state="process exited 130; no upload, no checkout; collector abandoned")
