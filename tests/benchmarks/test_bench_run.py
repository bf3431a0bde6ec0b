"""The benchmark's process runner (benchmarks/bench_run.py): the peak memory it reports is
the measured process's own, not the high-water mark it inherits from a big benchmark
process (``ru_maxrss`` after fork and exec keeps the parent's)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_run

MB = 1 << 20

GROW = """
import sys
block = bytearray(int(sys.argv[1]))
for i in range(0, len(block), 4096):  # touch every page, so it is resident
    block[i] = 1
print(len(block))
"""


def _touched(size: int) -> bytearray:
    block = bytearray(size)
    for i in range(0, size, 4096):
        block[i] = 1
    return block


def test_peak_is_the_child_own_not_the_big_parent() -> None:
    ballast = _touched(400 * MB)  # the benchmark process is big...
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert parent_peak >= 400 * MB
    run = bench_run.run_process([sys.executable, "-c", GROW, str(80 * MB)])
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(80 * MB)
    # ...the child grew by 80 MB on top of an interpreter (~10-20 MB): its own peak.
    assert 80 * MB <= run.peak_rss_bytes < 200 * MB
    assert run.peak_rss_bytes < parent_peak
    del ballast


def test_peak_follows_what_the_child_allocates() -> None:
    small = bench_run.run_process([sys.executable, "-c", GROW, str(1 * MB)])
    big = bench_run.run_process([sys.executable, "-c", GROW, str(150 * MB)])
    assert small.returncode == big.returncode == 0
    assert small.peak_rss_bytes < 80 * MB
    assert big.peak_rss_bytes >= 150 * MB
    assert big.peak_rss_bytes - small.peak_rss_bytes >= 140 * MB


def test_a_process_gone_before_the_first_read_reports_no_peak() -> None:
    watch = bench_run.PeakWatch(pid=2**22 + 12345)  # above pid_max: never a process
    assert watch.stop() == 0
    assert bench_run.vm_hwm_bytes(2**22 + 12345) is None
