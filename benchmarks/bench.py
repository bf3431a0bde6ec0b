"""The benchmark of issue 7: how fast a submission is next to the plain sequential floor.

    bash scripts/bench.sh [--quick] [--server URL --storage DIR] [...]

One run builds (or reuses from ``.bench-cache/``) the productions, starts the local
Shaman server in its own process with fresh storage for every cold case, runs the fixed
reference floor (``reference_floor.py``) on the same files and server, measures every
case, prints one table and writes it to ``benchmarks/RESULTS.md``. See
``benchmarks/README.md`` for what each case means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import queue
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # shaman_addon, for the in-process drain tick

import bench_data  # noqa: E402
import bench_film  # noqa: E402
import bench_run  # noqa: E402
import bench_shaped  # noqa: E402
from bench_server import Counts, Server  # noqa: E402

log = logging.getLogger("bench")

MB = 1e6
GIB = 1 << 30
DEFAULT_RESULTS = HERE / "RESULTS.md"
SHAPED_RESULTS = HERE / "RESULTS-shaped.md"  # --shaped alone
FILM_RESULTS = HERE / "RESULTS-film.md"  # --film alone


@dataclass
class Row:
    """One line of the table."""

    case: str
    files: int | None
    nbytes: int | None
    seconds: float | None
    floor_s: float | None
    counts: Counts | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""
    runs: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.seconds is None or not self.floor_s:
            return None
        return self.seconds / self.floor_s


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.python = args.python or bench_run.python_default()
        bench_run.compile_package(self.python)
        self.rows: list[Row] = []
        self.details: list[str] = []
        self.server = Server(args.server or "", args.storage, python=self.python,
                             store_parent=args.store_dir)
        self.work = Path(tempfile.mkdtemp(prefix="shaman-bench-"))
        self.film_ran = False  # the film cases ran on their own store folder
        q = args.quick
        self.n_cold = args.repeats or (1 if q else 3)
        self.n_warm = args.repeats or (2 if q else 5)

    # -- helpers
    def note(self, text: str) -> None:
        log.info(text)
        self.details.append(text)

    def cache_dir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="cache-", dir=self.work))

    def floor_run(self, prod: bench_data.Production) -> tuple[bench_run.Run, Counts]:
        self.server.fresh()
        self.server.reset_counts()
        run = bench_run.floor(self.python, self.server.url, prod.file_list())
        return run, self.counted(run)

    def counted(self, run: bench_run.Run) -> Counts:
        """The server's counts, and CPU seconds of both processes into the run's notes."""
        counts = self.server.counts()
        server_cpu = self.server.cpu_since_reset()
        run.cpu_note = f"cpu: client {run.cpu_s:.2f} s" + (
            "" if server_cpu is None else f", server {server_cpu:.2f} s")
        return counts

    def cold_run(self, prod: bench_data.Production) -> tuple[bench_run.Run, Counts, Path]:
        self.server.fresh()
        self.server.reset_counts()
        cache = self.cache_dir()
        run = bench_run.submit(self.python, prod.main_blend, self.server.url, cache,
                               jobs=self.args.jobs)
        return run, self.counted(run), cache

    def phases(self, run: bench_run.Run) -> str:
        ph = run.doc.get("phase_seconds", {})
        text = ", ".join(f"{k} {v:.2f}" for k, v in ph.items())
        return f"{text}; {run.cpu_note}" if text else run.cpu_note

    # -- the cases
    def production(self, files: int, total: int, libraries: int | None = None,
                   **kw: Any) -> bench_data.Production:
        libs = self.args.libraries if libraries is None else libraries
        spec = bench_data.Spec(files=files, total_bytes=total, libraries=libs, **kw)
        t0 = time.perf_counter()
        prod = bench_data.build(spec, self.args.cache, python=self.python,
                                regenerate=self.args.regenerate)
        log.info("production %s ready (%.1f s)", spec.name, time.perf_counter() - t0)
        return prod

    def main_cases(self, prod: bench_data.Production) -> tuple[float, float]:
        """deps, floor, cold, unchanged, one changed texture; returns (cold, floor)."""
        nfiles, nbytes = len(prod.files), prod.total_bytes
        # Tracing alone.
        deps = [bench_run.deps(self.python, prod.main_blend).wall_s
                for _ in range(self.n_cold)]

        floors: list[float] = []
        colds: list[float] = []
        floor_counts = cold_counts = None
        cache = Path()
        for i in range(self.n_cold):
            frun, floor_counts = self.floor_run(prod)
            floors.append(frun.wall_s)
            d = frun.doc
            self.note(f"floor {nfiles} files run {i + 1}: wall {frun.wall_s:.2f} s (inside: "
                      f"hash {d['hash_s']:.2f} s, upload {d['upload_s']:.2f} s); "
                      f"{frun.cpu_note}")
            crun, cold_counts, cache = self.cold_run(prod)
            colds.append(crun.wall_s)
            self.note(f"cold {nfiles} files run {i + 1}: wall {crun.wall_s:.2f} s, peak "
                      f"{crun.peak_rss_bytes / MB:.0f} MB; phases: {self.phases(crun)}")
        floor_s = statistics.median(floors)
        cold_s = statistics.median(colds)
        self.rows.append(Row("tracing alone (deps)", nfiles, nbytes, statistics.median(deps),
                             floor_s, Counts(0, 0, {}, 0, {}), runs=deps))
        self.cold_counts = cold_counts
        self.rows.append(Row(f"reference floor, {nfiles:,} files", nfiles, nbytes, floor_s, floor_s,
                             floor_counts, runs=floors))
        self.rows.append(Row("cold submission", nfiles, nbytes, cold_s, floor_s, cold_counts,
                             "<= 1.0 x floor", cold_s <= floor_s, runs=colds))

        # Unchanged resubmissions, on the store and caches the last cold run left.
        traces = cache / "traces"
        before = {p.name: p.stat().st_mtime_ns for p in traces.iterdir()}
        warm, problems, counts = self.unchanged_runs(prod, cache, self.n_warm, "unchanged run")
        after = {p.name: p.stat().st_mtime_ns for p in traces.iterdir()}
        if after != before:
            problems.append("traces were written again (not from the cache)")
        warm_s = statistics.median(warm)
        ok = warm_s <= 1.5 and not problems
        note = "; ".join(sorted(set(problems))) or (
            f"0 bytes, 1 requirements call, {nfiles} checksums + {len(before)} traces "
            "from cache, rewritten copies identical")
        self.rows.append(Row("unchanged resubmission", nfiles, nbytes, warm_s, floor_s, counts,
                             "<= 1.5 s, 0 bytes, 1 req call", ok, note, runs=warm))

        # One changed texture.
        tex = prod.bulk[0]
        original = tex.read_bytes()
        changed, problems, last = self.changed_runs(prod, tex, cache, self.n_warm,
                                                    "one changed texture")
        counts = last or counts
        ch_s = statistics.median(changed)
        self.rows.append(Row("one texture changed", nfiles, nbytes, ch_s, floor_s, counts,
                             "<= 2 s, only its bytes", ch_s <= 2.0 and not problems,
                             "; ".join(sorted(set(problems)))
                             or f"exactly its {len(original):,} bytes sent", runs=changed))
        return cold_s, floor_s

    def unchanged_runs(self, prod: bench_data.Production, cache: Path, repeats: int,
                       label: str) -> tuple[list[float], list[str], Counts | None]:
        """Submit ``repeats`` times on the store and cache a cold run left: the wall
        times, what went wrong (``unchanged_problems``), the last run's counts."""
        walls: list[float] = []
        problems: list[str] = []
        counts = None
        for _ in range(repeats):
            self.server.reset_counts()
            run = bench_run.submit(self.python, prod.main_blend, self.server.url, cache,
                                   jobs=self.args.jobs)
            counts = self.counted(run)
            walls.append(run.wall_s)
            problems += self.unchanged_problems(run, counts, cache)
            self.note(f"{label}: wall {run.wall_s:.2f} s, peak {run.peak_rss_bytes / MB:.0f} "
                      f"MB; phases: {self.phases(run)}")
        return walls, problems, counts

    @contextlib.contextmanager
    def stores_in(self, store: Path, what: str) -> Iterator[None]:
        """The local server's fresh stores go to ``store`` (``Path("")``: where they go
        already) for the cases run inside; then back."""
        before = self.server.store_parent
        if store != Path(""):
            self.server.store_parent = store
        self.note(f"{what}: the local server's stores in "
                  f"{self.server.store_parent or 'the temp folder'}")
        try:
            yield
        finally:
            self.server.store_parent = before

    def changed_runs(self, prod: bench_data.Production, target: Path, cache: Path,
                     repeats: int, label: str) -> tuple[list[float], list[str], Counts | None]:
        """Submit ``repeats`` times, each after giving ``target`` other bytes of the same
        size: the wall times, what went wrong (bytes sent other than the file's), the last
        run's counts. ``target`` gets its own bytes back."""
        original = target.read_bytes()
        walls: list[float] = []
        problems: list[str] = []
        counts = None
        try:
            for i in range(repeats):
                data = bytearray(original)
                data[-1] ^= 1 + i  # a new content each run, same size
                target.write_bytes(bytes(data))
                self.server.reset_counts()
                run = bench_run.submit(self.python, prod.main_blend, self.server.url, cache,
                                       jobs=self.args.jobs)
                counts = self.counted(run)
                walls.append(run.wall_s)
                if counts.bytes_received is not None and counts.bytes_received != len(data):
                    problems.append(f"sent {counts.bytes_received} bytes, the file has "
                                    f"{len(data)}")
                self.note(f"{label}: wall {run.wall_s:.2f} s; phases: {self.phases(run)}")
        finally:
            target.write_bytes(original)
        return walls, problems, counts

    def unchanged_problems(self, run: bench_run.Run, counts: Counts, cache: Path) -> list[str]:
        out = []
        if counts.bytes_received not in (0, None):
            out.append(f"{counts.bytes_received} bytes sent")
        if counts.requirements_calls not in (1, None):
            out.append(f"{counts.requirements_calls} requirements calls")
        if counts.by_endpoint.get("upload"):
            out.append(f"{counts.by_endpoint['upload']} upload requests")
        from shaman_addon.submit.history import HISTORY_FILE_NAME

        lines = (cache / HISTORY_FILE_NAME).read_text("utf-8").splitlines()
        last = json.loads(lines[-1])  # one JSON document per line, the newest last
        if last.get("cache_hits") != last.get("files_total"):
            out.append(f"{last.get('cache_hits')} of {last.get('files_total')} checksums "
                       "from the cache")
        return out

    def big_file(self) -> None:
        size = self.args.big_gib * GIB
        prod = self.production(1, 4096, libraries=0, kinds="basic", big_file_bytes=size)
        nbytes = prod.total_bytes
        floors, ours, peaks = [], [], []
        counts = None
        for _ in range(1 if self.args.quick else 2):
            frun, _c = self.floor_run(prod)
            floors.append(frun.wall_s)
            run, counts, _cache = self.cold_run(prod)
            ours.append(run.wall_s)
            peaks.append(run.peak_rss_bytes)
            self.note(f"{self.args.big_gib} GiB cold: wall {run.wall_s:.2f} s, peak "
                      f"{run.peak_rss_bytes / MB:.0f} MB, floor {frun.wall_s:.2f} s (floor "
                      f"peak {frun.peak_rss_bytes / MB:.0f} MB, {frun.cpu_note}); phases: "
                      f"{self.phases(run)}")
        f_s, o_s, peak = statistics.median(floors), statistics.median(ours), max(peaks)
        ok = peak < 150 * MB and o_s <= 1.5 * f_s
        self.rows.append(Row(f"{self.args.big_gib} GiB file, cold", len(prod.files), nbytes,
                             o_s, f_s, counts, "peak < 150 MB, <= 1.5 x floor", ok,
                             f"peak RSS {peak / MB:.0f} MB; {nbytes / o_s / MB:.0f} MB/s vs "
                             f"floor {nbytes / f_s / MB:.0f} MB/s", runs=ours))

    def modal_tick(self) -> None:
        from shaman_addon.progress import Phase, ProgressEvent, drain

        events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
        applied: list[float] = []
        ticks = []
        for _ in range(20):
            for i in range(10_000):
                events.put(ProgressEvent(Phase.UPLOADING, i, 10_000, upload_bytes_done=i,
                                         upload_bytes_total=10_000))
            t0 = time.perf_counter()
            drain(events, lambda ev: applied.append(ev.fraction))
            ticks.append(time.perf_counter() - t0)
            while True:  # empty what the tick left for the next round
                try:
                    events.get_nowait()
                except queue.Empty:
                    break
        med, worst = statistics.median(ticks), max(ticks)
        self.rows.append(Row("modal tick, 10k queued", None, None, med, None, None,
                             "<= 5 ms", worst <= 0.005, f"worst of 20: {worst * 1e3:.2f} ms",
                             runs=ticks))

    def scaling(self, base_files: int, base_bytes: int, cold3k: float, floor3k: float) -> None:
        per_file_bytes = base_bytes // base_files
        per_file: dict[int, float] = {}
        for n in self.args.scale_files:
            if n == base_files:
                cold_s, floor_s, counts = cold3k, floor3k, self.cold_counts
                nfiles = len(self.main_prod.files)
                nbytes = self.main_prod.total_bytes
            else:
                prod = self.production(n, per_file_bytes * n)
                nfiles, nbytes = len(prod.files), prod.total_bytes
                frun, _c = self.floor_run(prod)
                run, counts, _cache = self.cold_run(prod)
                cold_s, floor_s = run.wall_s, frun.wall_s
                self.note(f"cold {nfiles} files: wall {cold_s:.2f} s, floor {floor_s:.2f} s "
                          f"({frun.cpu_note}), "
                          f"peak {run.peak_rss_bytes / MB:.0f} MB; phases: {self.phases(run)}")
            per_file[n] = cold_s / nfiles
            self.rows.append(Row(f"cold, {n:,} files", nfiles, nbytes, cold_s, floor_s, counts,
                                 note=f"{per_file[n] * 1e3:.2f} ms per file"))
        biggest = max(per_file)
        if base_files in per_file and biggest > base_files:
            ratio = per_file[biggest] / per_file[base_files]
            row = next(r for r in self.rows if r.case == f"cold, {biggest:,} files")
            row.target = f"per file <= 1.5 x at {base_files:,}"
            row.ok = ratio <= 1.5
            row.note += f" ({ratio:.2f} x the time per file at {base_files:,})"

    # -- output
    def table(self) -> str:
        head = ("| case | files | MB | time (median) | floor | × floor | requests | "
                "MB sent | target | holds | notes |")
        lines = [head, "|" + "---|" * 11]
        for r in self.rows:
            c = r.counts
            req = "" if c is None or c.requests is None else (
                f"{c.requests:,}" + (f" ({c.requirements_calls} req)"
                                     if c.requirements_calls else ""))
            sent = "" if c is None or c.bytes_received is None else f"{c.bytes_received / MB:,.1f}"
            secs = "" if r.seconds is None else (
                f"{r.seconds * 1e3:.2f} ms" if r.seconds < 0.1 else f"{r.seconds:.2f} s")
            floor = "" if r.floor_s is None else f"{r.floor_s:.2f} s"
            ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
            holds = "" if r.ok is None else ("yes" if r.ok else "**NO**")
            lines.append(
                f"| {r.case} | {'' if r.files is None else f'{r.files:,}'} | "
                f"{'' if r.nbytes is None else f'{r.nbytes / MB:,.0f}'} | {secs} | {floor} | "
                f"{ratio} | {req} | {sent} | {r.target} | {holds} | {r.note} |")
        return "\n".join(lines)

    def write_results(self, table: str, seconds: float) -> None:
        a = self.args
        lines = [
            "# Benchmark results (issue 7)",
            "",
            f"Written by `bash scripts/bench.sh{' --quick' if a.quick else ''}"
            f"{' --shaped' if a.shaped else ''}{' --film' if a.film else ''}` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, "
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"server: {'external ' + a.server if a.server else 'local test server'}"
            f"{f' (store in {a.store_dir})' if a.store_dir and not a.server else ''}"
            f"{f'; film cases: stores in {a.film_store_dir}' if self.film_ran else ''}"
            f"; run took {seconds:.0f} s; load average at the start "
            f"{self.load_start:.1f}, at the end {os.getloadavg()[0]:.1f} (other work on the "
            "machine makes single runs noisy: compare the floor of the same run).",
            "",
            "Times are wall seconds of the whole process (start-up included, for the floor "
            "too); medians of several runs where noted below. `× floor` is the time over the "
            "reference floor's on the same files in this run (for the unchanged, changed "
            "and tracing rows: over the cold 3k floor). Requests and MB sent are counted by "
            "the server. Shaped rows (a `lan` or `remote` link, `benchmarks/shaped_link.py`): "
            "the floor is the link floor, payload / bandwidth + one RTT; for the tiny files "
            "the slower of it and the server floor (the reference floor's upload phase, no "
            "proxy).",
            "",
            table,
            "",
            "## Runs",
            "",
            *[f"- {d}" for d in self.details],
            "",
        ]
        a.results.write_text("\n".join(lines), "utf-8")
        if a.results == DEFAULT_RESULTS:  # a run written elsewhere is an experiment
            for readme in (HERE / "README.md", HERE.parent / "README.md"):
                _fill_markers(readme, f"{lines[2]}\n\n{table}")
        elif a.results == SHAPED_RESULTS:
            _fill_markers(HERE / "README.md", f"{lines[2]}\n\n{table}", "shaped")
        elif a.results == FILM_RESULTS:
            _fill_markers(HERE / "README.md", f"{lines[2]}\n\n{table}", "film")


    def run(self) -> int:
        t0 = time.perf_counter()
        self.load_start = os.getloadavg()[0]
        a = self.args
        try:
            self.main_prod = self.production(a.files, int(a.total_mb * MB))
            only = a.shaped or a.film  # one group of cases alone
            if not only:
                self.modal_tick()
                cold3k, floor3k = self.main_cases(self.main_prod)
                if a.big_gib:
                    self.big_file()
                if a.scale_files:
                    self.scaling(a.files, int(a.total_mb * MB), cold3k, floor3k)
            if (a.shaped or not only) and not a.no_shaped:
                bench_shaped.ShapedCases(self, Row).run(self.main_prod)
            if (a.film or not only) and not a.no_film:
                bench_film.FilmCases(self, Row).run(self.main_prod)
                self.film_ran = bool(a.film_store_dir != Path("") and not a.server)
        finally:
            self.server.stop()
            shutil.rmtree(self.work, ignore_errors=True)
        table = self.table()
        print(table)
        if a.results:
            self.write_results(table, time.perf_counter() - t0)
            print(f"\nwritten to {a.results}")
        return 0 if all(r.ok is not False for r in self.rows) else 1


def _fill_markers(path: Path, text: str, name: str = "bench") -> None:
    """Put the latest table between the ``name`` markers of ``path``, if it has them."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    try:
        doc = path.read_text("utf-8")
    except OSError:
        return
    if start not in doc or end not in doc:
        return
    head, rest = doc.rsplit(start, 1)  # the last pair: prose may quote the markers
    _old, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}", "utf-8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (medians of fewer runs)")
    p.add_argument("--repeats", type=int, default=0, help="runs per case (overrides --quick)")
    p.add_argument("--files", type=int, default=3000, help="dependency files of the main case")
    p.add_argument("--total-mb", type=float, default=500.0, help="their total size, MB")
    p.add_argument("--libraries", type=int, default=20)
    p.add_argument("--big-gib", type=int, default=2, help="size of the one big file (0: skip)")
    p.add_argument("--scale-files", type=lambda s: [int(x) for x in s.split(",") if x],
                   default=[300, 3000, 30000],
                   help="file counts of the scaling case, same bytes per file (empty: skip)")
    p.add_argument("--jobs", type=int, default=None, help="--jobs passed to submit")
    p.add_argument("--server", default="", help="use this Shaman server instead of ours")
    p.add_argument("--storage", type=Path, default=None,
                   help="that server's storage folder (emptied for every cold case)")
    p.add_argument("--store-dir", type=Path, default=None,
                   help="where the local server's fresh stores go (default: the temp "
                   "folder); /dev/shm takes the disk, and other work's disk traffic, out")
    p.add_argument("--cache", type=Path, default=bench_data.DEFAULT_CACHE,
                   help="where generated productions are kept")
    p.add_argument("--regenerate", action="store_true", help="rebuild cached productions")
    p.add_argument("--python", default="", help="interpreter for the measured processes")
    p.add_argument("--shaped", action="store_true",
                   help="only the shaped-link cases (benchmarks/shaped_link.py); the table "
                   "goes to benchmarks/RESULTS-shaped.md")
    p.add_argument("--no-shaped", action="store_true", help="skip the shaped-link cases")
    p.add_argument("--shaped-cases", default="lan,remote,tiny",
                   help="which shaped cases: lan, remote (the main production), tiny "
                   "(10,000 files of 4 KB on remote)")
    p.add_argument("--shaped-store-dir", type=Path,
                   default=Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(""),
                   help="where the local server's stores go in the shaped cases (default "
                   "/dev/shm: the link, not this machine's disk, is measured; '' = as "
                   "--store-dir)")
    p.add_argument("--film", action="store_true",
                   help="only the feature-film cases (benchmarks/bench_film.py: 100,000 small "
                   "files, 30,000 images in main.blend); the table goes to "
                   "benchmarks/RESULTS-film.md")
    p.add_argument("--no-film", action="store_true", help="skip the feature-film cases")
    p.add_argument("--film-files", type=int, default=bench_film.FILM_FILES,
                   help="bulk files of the film production (30%% of them in main.blend)")
    p.add_argument("--film-repeats", type=int, default=0,
                   help="cold runs of the film production (default 1: each takes minutes)")
    p.add_argument("--film-store-dir", type=Path,
                   default=Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(""),
                   help="where the local server's stores go in the film cases (default "
                   "/dev/shm; '' = as --store-dir)")
    p.add_argument("--results", type=Path, default=None,
                   help="markdown file for the table ('' to skip; default RESULTS.md, "
                   "RESULTS-shaped.md with --shaped, RESULTS-film.md with --film)")
    args = p.parse_args(argv)
    if args.shaped and args.no_shaped:
        p.error("--shaped and --no-shaped exclude each other")
    if args.film and args.no_film:
        p.error("--film and --no-film exclude each other")
    if args.shaped and args.film:
        p.error("--shaped and --film each run one group alone; leave both out for all")
    if args.results is None:
        args.results = (SHAPED_RESULTS if args.shaped else FILM_RESULTS if args.film
                        else DEFAULT_RESULTS)
    elif args.results == Path(""):
        args.results = None
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)
    return Bench(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
