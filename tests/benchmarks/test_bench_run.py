"""The benchmark's process runner (benchmarks/bench_run.py): the peak memory it reports is
the measured process's own, not the high-water mark it inherits from a big benchmark
process (``ru_maxrss`` after fork and exec keeps the parent's).

The children hold their memory until the watch has read it (files as signals, bounded
waits): event ordering, not timing."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_run

MB = 1 << 20
WAIT_STEPS = 3000  # x 10 ms: a bound for a loaded machine, never reached normally

HOLD = """
import pathlib, sys, time
block = bytearray(int(sys.argv[1]))
for i in range(0, len(block), 4096):  # touch every page, so it is resident
    block[i] = 1
signals = pathlib.Path(sys.argv[2])
(signals / "ready").touch()
for _ in range(3000):  # until the watch has read the peak (bounded)
    if (signals / "release").exists():
        break
    time.sleep(0.01)
print(len(block))
"""


def _wait_for(path: Path) -> bool:
    for _ in range(WAIT_STEPS):
        if path.exists():
            return True
        time.sleep(0.01)
    return False


def _release_once_read(signals: Path) -> Callable[[int, bench_run.PeakWatch], None]:
    """An ``on_spawn``: wait for the child's peak, for a read after it, then release it."""

    def on_spawn(_pid: int, watch: bench_run.PeakWatch) -> None:
        assert _wait_for(signals / "ready")
        assert watch.read_again()
        (signals / "release").touch()

    return on_spawn


def _touched(size: int) -> bytearray:
    block = bytearray(size)
    for i in range(0, size, 4096):
        block[i] = 1
    return block


def _hold(size: int, signals: Path) -> bench_run.Run:
    signals.mkdir()
    run = bench_run.run_process([sys.executable, "-c", HOLD, str(size), str(signals)],
                                on_spawn=_release_once_read(signals))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(size)
    return run


def test_peak_is_the_child_own_not_the_big_parent(tmp_path: Path) -> None:
    ballast = _touched(300 * MB)  # the benchmark process is big...
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert parent_peak >= 300 * MB
    run = _hold(80 * MB, tmp_path / "signals")
    # ...the child grew by 80 MB on top of an interpreter (~10-20 MB): its own peak.
    assert 80 * MB <= run.peak_rss_bytes < 200 * MB
    assert run.peak_rss_bytes < parent_peak
    del ballast


def test_peak_follows_what_the_child_allocates(tmp_path: Path) -> None:
    small = _hold(1 * MB, tmp_path / "small")
    big = _hold(150 * MB, tmp_path / "big")
    assert small.peak_rss_bytes < 80 * MB
    assert big.peak_rss_bytes >= 150 * MB
    assert big.peak_rss_bytes - small.peak_rss_bytes >= 140 * MB


def test_a_process_gone_before_the_first_read_reports_no_peak() -> None:
    watch = bench_run.PeakWatch(pid=2**22 + 12345)  # above pid_max: never a process
    assert watch.read_again()
    assert watch.stop() == 0
    assert bench_run.vm_hwm_bytes(2**22 + 12345) is None
