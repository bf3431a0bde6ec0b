"""The benchmark's shaped-link cases: cold submissions through ``shaped_link.py``.

The local server runs as usual (its own process, fresh store each run); the proxy runs on
a thread of the benchmark's process (idle in ``wait4`` meanwhile), and the submitter is
given the proxy's address. Cases:

- the main production (~3,000 files) on the ``lan`` and on the ``remote`` profile;
- 10,000 files of 4 KB in one main .blend (``tests/blendgen.py``, cached like the others),
  on ``remote``, next to the server's own pace on the same files: the fixed reference
  floor run straight against the server (no proxy), interleaved with the shaped runs.

Link floor = payload bytes / bandwidth + one RTT. The server floor is the reference
floor's upload phase (``upload_s``: first upload to last answer, one file after another on
one keep-alive connection, checksums already known; interpreter start-up and hashing left
out, as a submission overlaps them with its uploads).
"""

from __future__ import annotations

import statistics
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bench_data
import bench_run
import shaped_link
from bench_server import Counts

if TYPE_CHECKING:
    from bench import Bench

MB = 1e6
MAIN_TARGET = 1.10  # x the link floor
TINY_TARGET = 1.5  # x the slower of the link floor and the server floor
TINY_FILES = 10_000
TINY_BYTES = 4096


@dataclass
class ShapedRun:
    """One cold submission through the proxy."""

    run: bench_run.Run
    counts: Counts
    server_cpu_s: float | None
    proxy_cpu_s: float | None
    up_bytes: int  # what crossed the link, headers and all
    down_bytes: int
    connections: int

    def cpu(self) -> str:
        """CPU seconds: submitter/server/proxy."""
        def fmt(v: float | None) -> str:
            return "?" if v is None else f"{v:.1f}"
        return "/".join(fmt(v) for v in (self.run.cpu_s, self.server_cpu_s, self.proxy_cpu_s))


class ShapedCases:
    """Adds the shaped rows to ``bench.rows`` (made with ``row``, bench.Row)."""

    def __init__(self, bench: Bench, row: Callable[..., Any]) -> None:
        self.bench = bench
        self.row = row
        a = bench.args
        self.repeats = a.repeats or (1 if a.quick else 3)
        self.cases = [c for c in a.shaped_cases.split(",") if c]
        self.direct: dict[Path, list[float]] = {}  # cold walls without the proxy, by production

    def run(self, main_prod: bench_data.Production) -> None:
        bench = self.bench
        host = urllib.parse.urlsplit(bench.server.url or "http://127.0.0.1").hostname
        if bench.server.external and host not in (shaped_link.LOOPBACK, "localhost"):
            bench.note(f"shaped cases skipped: the proxy forwards to loopback only, "
                       f"the server is on {host}")
            return
        with bench.stores_in(bench.args.shaped_store_dir, "shaped cases"):
            for name in ("lan", "remote"):
                if name in self.cases:
                    self.main_case(main_prod, shaped_link.PROFILES[name])
            if "tiny" in self.cases:
                tiny = bench.production(TINY_FILES, TINY_FILES * TINY_BYTES, libraries=0,
                                        kinds="basic")
                self.tiny_case(tiny, shaped_link.PROFILES["remote"])

    # -- measuring
    def shaped_run(self, prod: bench_data.Production, profile: shaped_link.Profile,
                   label: str) -> ShapedRun:
        bench = self.bench
        bench.server.fresh()
        bench.server.reset_counts()
        url = urllib.parse.urlsplit(bench.server.url)
        proxy = shaped_link.ShapedLink((url.hostname or shaped_link.LOOPBACK, url.port or 80),
                                       profile)
        port = proxy.start()
        try:
            run = bench_run.submit(bench.python, prod.main_blend,
                                   f"http://{shaped_link.LOOPBACK}:{port}", bench.cache_dir(),
                                   jobs=bench.args.jobs)
        finally:
            proxy_cpu = proxy.cpu_s()
            proxy.stop()
        counts = bench.counted(run)
        out = ShapedRun(run, counts, bench.server.cpu_since_reset(), proxy_cpu,
                        proxy.up.sent_bytes, proxy.down.sent_bytes, proxy.connections)
        floor = profile.floor_s(prod.total_bytes)
        bench.note(
            f"{label}: wall {run.wall_s:.2f} s ({run.wall_s / floor:.2f} x link floor "
            f"{floor:.2f} s), {counts.requests} requests ({counts.requirements_calls} req), "
            f"{proxy.connections} connections, link up {out.up_bytes / MB:.1f} MB "
            f"({out.up_bytes * 8 / run.wall_s / 1e6:.0f} Mbit/s on average), down "
            f"{out.down_bytes / MB:.2f} MB; cpu s submitter/server/proxy {out.cpu()}; "
            f"phases: {bench.phases(run)}")
        return out

    def direct_run(self, prod: bench_data.Production, label: str) -> None:
        """A cold submission straight to the server (same store place), for comparison:
        once per repeat of the first shaped case of each production."""
        walls = self.direct.setdefault(prod.root, [])
        if len(walls) >= self.repeats:
            return
        run, counts, _cache = self.bench.cold_run(prod)
        walls.append(run.wall_s)
        self.bench.note(f"{label}, direct (no proxy): wall {run.wall_s:.2f} s, "
                        f"{counts.requests} requests; phases: {self.bench.phases(run)}")

    def case_name(self, what: str, profile: shaped_link.Profile) -> str:
        return (f"cold, {what}, {profile.name} link ({profile.rtt_s * 1e3:g} ms RTT, "
                f"{profile.rate_bps / 1e6:,.0f} Mbit/s)")

    def main_case(self, prod: bench_data.Production, profile: shaped_link.Profile) -> None:
        nfiles = len(prod.files)
        runs = []
        for i in range(self.repeats):
            self.direct_run(prod, f"{nfiles} files, run {i + 1}")
            runs.append(self.shaped_run(prod, profile, f"{profile.name} link, {nfiles} files, "
                                        f"run {i + 1}"))
        self.add_row(self.case_name(f"{nfiles:,} files", profile), prod, runs,
                     profile.floor_s(prod.total_bytes), MAIN_TARGET,
                     f"<= {MAIN_TARGET:.2f} x link floor", "")

    def tiny_case(self, prod: bench_data.Production, profile: shaped_link.Profile) -> None:
        bench = self.bench
        nfiles = len(prod.files)
        runs: list[ShapedRun] = []
        uploads, walls, server_cpus = [], [], []
        floor_counts = None
        for i in range(self.repeats):
            frun, floor_counts = bench.floor_run(prod)  # straight to the server
            uploads.append(frun.doc["upload_s"])
            walls.append(frun.wall_s)
            server_cpus.append(bench.server.cpu_since_reset() or 0.0)
            bench.note(f"reference floor, {nfiles} tiny files, no proxy, run {i + 1}: wall "
                       f"{frun.wall_s:.2f} s (hash {frun.doc['hash_s']:.2f} s, upload "
                       f"{frun.doc['upload_s']:.2f} s = "
                       f"{frun.doc['upload_s'] / nfiles * 1e3:.3f} ms per file); "
                       f"{frun.cpu_note}")
            self.direct_run(prod, f"{nfiles} tiny files, run {i + 1}")
            runs.append(self.shaped_run(prod, profile, f"{profile.name} link, {nfiles} tiny "
                                        f"files, run {i + 1}"))
        server_s = statistics.median(uploads)
        link_s = profile.floor_s(prod.total_bytes)
        bench.rows.append(self.row(
            f"reference floor, {nfiles:,} tiny files, no proxy", nfiles, prod.total_bytes,
            statistics.median(walls), None, floor_counts, runs=walls,
            note=f"upload phase {server_s:.2f} s = {server_s / nfiles * 1e3:.3f} ms per file "
                 f"(the server floor); server cpu {statistics.median(server_cpus):.2f} s"))
        slower = "server" if server_s > link_s else "link"
        self.add_row(self.case_name(f"{nfiles:,} files of 4 KB", profile), prod, runs,
                     max(server_s, link_s), TINY_TARGET,
                     f"<= {TINY_TARGET:.1f} x max(link, server) floor",
                     f"link floor {link_s:.2f} s, server floor {server_s:.2f} s: the "
                     f"{slower} is slower; ")

    def add_row(self, name: str, prod: bench_data.Production, runs: list[ShapedRun],
                floor_s: float, limit: float, target: str, note: str) -> None:
        walls = [r.run.wall_s for r in runs]
        med = statistics.median(walls)
        mid = min(runs, key=lambda r: abs(r.run.wall_s - med))  # its counts go in the row
        direct = self.direct.get(prod.root)
        self.bench.rows.append(self.row(
            name, len(prod.files), prod.total_bytes, med, floor_s, mid.counts,
            target, med <= limit * floor_s,
            f"{note}runs {' / '.join(f'{w:.2f}' for w in walls)} s; cpu s "
            f"submitter/server/proxy {', '.join(r.cpu() for r in runs)}; "
            f"{mid.connections} connections"
            + (f"; direct, no proxy: {statistics.median(direct):.2f} s" if direct else ""),
            runs=walls))
