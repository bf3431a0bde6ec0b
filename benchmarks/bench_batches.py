"""How big the requirements batches should be (issue 14, item 5), measured.

    .venv/bin/python benchmarks/bench_batches.py [--sizes 250,500,1000,2000,5000]
        [--productions film,main] [--repeats N] [--store-dir /dev/shm]

For each production and batch size: a cold submission (fresh store, empty cache) and an
unchanged one (same store and cache). Each runs as its own process that builds the
submission in-process, exactly as the command line does (``app.settings`` ->
``SubmitOptions`` -> ``Submission.run``), with one difference: its ``Tuning`` has
``batch_files`` = the size and ``batch_bytes`` scaled with it (the default 64 MiB per 500
files, so the 500 row is the default tuning). The local Shaman server runs in its own
process, on a fresh store for every cold run.

Printed per run: the submission's wall time (``Submission.run``, interpreter start-up
left out: it does not depend on the batch), the requirements calls the server counted
and their sizes (median, largest), when the first was sent (uploads cannot start
before), the slowest requirements answer and the time the
main thread spent waiting for requirements answers (timed in the submitting process
around ``ShamanClient.requirements``), the submitter's and the server's CPU seconds.
Productions: ``film`` (100,000 files of ~4 KB, 30,000 images in main.blend; see
``bench_film.py``) and ``main`` (the 3,000-file main production, ~166 KB a file).
The table is also written to ``benchmarks/RESULTS-batches.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import bench_data  # noqa: E402
import bench_film  # noqa: E402
import bench_run  # noqa: E402
from bench_server import Server  # noqa: E402

log = logging.getLogger("bench.batches")

RESULTS = HERE / "RESULTS-batches.md"
DEFAULT_BATCH_FILES = 500
DEFAULT_BATCH_BYTES = 64 << 20
MB = 1e6


# --------------------------------------------------------------------------- the worker


def worker(args: argparse.Namespace) -> int:
    """One submission in this process with the given batch size; JSON on stdout."""
    from shaman_addon.app import settings
    from shaman_addon.shaman.client import ShamanClient
    from shaman_addon.submit import Submission, Tuning

    calls: list[tuple[int, float]] = []  # (files asked, seconds) per requirements call
    first: list[float] = []  # when the first requirements call was sent
    original = ShamanClient.requirements

    def timed(self: ShamanClient, files: Any) -> Any:
        t0 = time.perf_counter()
        if not first:
            first.append(t0)
        try:
            return original(self, files)
        finally:
            calls.append((len(files), time.perf_counter() - t0))

    ShamanClient.requirements = timed  # type: ignore[method-assign]
    server, names = settings.command_line_server(args.server)
    run = settings.Run(cache_dir=args.cache, app_info={"interface": "bench_batches"})
    options = settings.submit_options(settings.Settings(server_url=server), run, names)
    extra = {}
    for item in args.tuning:  # other Tuning fields, typed as their defaults
        key, _, value = item.partition("=")
        extra[key] = type(getattr(Tuning(), key))(value)
    tuning = dataclasses.replace(Tuning(), batch_files=args.batch_files,
                                 batch_bytes=args.batch_bytes, **extra)
    options = dataclasses.replace(options, tuning=tuning)
    t0 = time.perf_counter()
    result = Submission(args.blend, options).run()
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "calls": calls, "files_total": result.files_total,
                      "first_call_s": first[0] - t0 if first else None,
                      "files_uploaded": result.files_uploaded,
                      "bytes_uploaded": result.bytes_uploaded}))
    return 0


# --------------------------------------------------------------------------- one call


def call_costs(args: argparse.Namespace) -> str:
    """One requirements call of N files, alone against an idle server (nothing stored, so
    the answer lists every file, as in a cold run): the fixed cost of a call against its
    cost per file. Medians of 5 calls; the client is this process."""
    import hashlib

    from shaman_addon.shaman.client import ClientSettings, FileSpec, ShamanClient

    sizes = [100, 250, 500, 1000, 2000, 5000, 20_000, 100_000]
    server = Server(python=args.python or bench_run.python_default(),
                    store_parent=args.store_dir)
    lines = ["| files per call | time (median of 5) | per file | answer files |",
             "|---|---|---|---|"]
    try:
        server.fresh()
        client = ShamanClient(server.url, ClientSettings())
        client.configuration()  # warm up: imports, the first connection
        for n in sizes:
            specs = [FileSpec(hashlib.sha256(f"{n}-{i}".encode()).hexdigest(), 4096 + i % 9,
                              f"bulk/d{i // 200:03d}/tex_{i:06d}.png") for i in range(n)]
            times, answered = [], 0
            for _ in range(5):
                t0 = time.perf_counter()
                answered = len(client.requirements(specs))
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            lines.append(f"| {n:,} | {med * 1e3:.1f} ms | {med / n * 1e6:.1f} us | "
                         f"{answered:,} |")
            log.info(lines[-1])
        client.close()
    finally:
        server.stop()
    return "\n".join(lines)


# --------------------------------------------------------------------------- the runs


@dataclasses.dataclass
class Measured:
    production: str
    kind: str  # cold / unchanged
    batch_files: int
    wall_s: float
    req_calls: int
    batch_median: float
    batch_max: int
    slowest_s: float
    waiting_s: float
    client_cpu_s: float
    server_cpu_s: float | None
    peak_mb: float
    uploaded: int
    first_call_s: float  # since Submission.run started


def one_run(python: str, server: Server, prod: bench_data.Production, label: str, kind: str,
            batch_files: int, cache: Path, tuning: list[str]) -> Measured:
    server.reset_counts()
    batch_bytes = DEFAULT_BATCH_BYTES * batch_files // DEFAULT_BATCH_FILES
    cmd = [python, str(Path(__file__).resolve()), "--worker", "--blend", str(prod.main_blend),
           "--server", server.url, "--cache", str(cache), "--batch-files", str(batch_files),
           "--batch-bytes", str(batch_bytes), *(f"--tuning={t}" for t in tuning)]
    run = bench_run.run_process(cmd, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if run.returncode != 0:
        raise RuntimeError(f"the worker exited {run.returncode}:\n{run.stderr[-3000:]}")
    doc = json.loads(run.stdout)
    server_cpu = server.cpu_since_reset()
    counted = server._call("GET", "/test/counters") if server.has_counters else {}
    sizes = counted.get("requirements_files") or [n for n, _s in doc["calls"]]
    secs = [s for _n, s in doc["calls"]]
    m = Measured(label, kind, batch_files, doc["wall_s"],
                 counted.get("requests", {}).get("requirements", len(secs)),
                 statistics.median(sizes) if sizes else 0, max(sizes, default=0),
                 max(secs, default=0.0), sum(secs), run.cpu_s, server_cpu,
                 run.peak_rss_bytes / MB, doc["files_uploaded"], doc["first_call_s"] or 0.0)
    log.info("%s %s batch %d: wall %.2f s, %d req calls (median %g, max %d files), first "
             "at %.2f s, slowest %.3f s, waiting %.2f s, cpu client %.2f s server %s s, "
             "peak %.0f MB, %d uploaded", label, kind, batch_files, m.wall_s, m.req_calls,
             m.batch_median, m.batch_max, m.first_call_s, m.slowest_s, m.waiting_s,
             m.client_cpu_s, "?" if server_cpu is None else f"{server_cpu:.2f}", m.peak_mb,
             m.uploaded)
    return m


def measure(args: argparse.Namespace) -> list[Measured]:
    python = args.python or bench_run.python_default()
    prods: dict[str, bench_data.Production] = {}
    for name in args.productions:
        if name == "film":
            spec = bench_film.film_spec(bench_film.FILM_FILES)
            prods[name] = bench_data.build(bench_data.Spec(
                spec["files"], spec["total"], main_images=spec["main_images"]), args.cache,
                python=python)
        elif name == "main":
            prods[name] = bench_data.build(bench_data.Spec(3000, 500_000_000), args.cache,
                                           python=python)
        else:
            raise SystemExit(f"unknown production {name!r} (film, main)")
    out: list[Measured] = []
    work = Path(tempfile.mkdtemp(prefix="bench-batches-"))
    server = Server(python=python, store_parent=args.store_dir)
    try:
        for name, prod in prods.items():
            repeats = args.repeats or (1 if name == "film" else 3)
            for _rep in range(repeats):  # sizes interleaved: drift hits every size alike
                for size in args.sizes:
                    server.fresh()
                    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))
                    for kind in ("cold", "unchanged"):
                        out.append(one_run(python, server, prod, name, kind, size, cache,
                                           args.tuning))
                    shutil.rmtree(cache, ignore_errors=True)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


def table(rows: list[Measured]) -> str:
    head = ("| production | run | batch files | wall (median) | runs | requirements calls | "
            "files per call (median / max) | first call at | slowest answer | "
            "waiting for answers | cpu s client / server | peak MB |")
    lines = [head, "|" + "---|" * 12]
    groups: dict[tuple[str, str, int], list[Measured]] = {}
    for m in rows:
        groups.setdefault((m.production, m.kind, m.batch_files), []).append(m)
    for (prod, kind, size), ms in groups.items():
        def med(f: str, ms: list[Measured] = ms) -> float:
            return statistics.median(getattr(m, f) for m in ms)
        server = [m.server_cpu_s for m in ms if m.server_cpu_s is not None]
        lines.append(
            f"| {prod} | {kind} | {size:,} | {med('wall_s'):.2f} s | "
            f"{' / '.join(f'{m.wall_s:.2f}' for m in ms)} | {med('req_calls'):.0f} | "
            f"{med('batch_median'):,.0f} / {med('batch_max'):,.0f} | "
            f"{med('first_call_s'):.2f} s | {med('slowest_s') * 1e3:.0f} ms | "
            f"{med('waiting_s'):.2f} s | "
            f"{med('client_cpu_s'):.1f} / "
            f"{statistics.median(server) if server else float('nan'):.1f} | "
            f"{med('peak_mb'):.0f} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",") if x],
                   default=[250, 500, 1000, 2000, 5000], help="batch_files values")
    p.add_argument("--productions", type=lambda s: [x for x in s.split(",") if x],
                   default=["film", "main"], help="film (100,000 files), main (3,000)")
    p.add_argument("--repeats", type=int, default=0,
                   help="runs per size (default: 1 for film, 3 for main)")
    p.add_argument("--store-dir", type=Path,
                   default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
                   help="where the server's fresh stores go (default /dev/shm)")
    p.add_argument("--cache", type=Path, default=bench_data.DEFAULT_CACHE)
    p.add_argument("--python", default="")
    p.add_argument("--results", type=Path, default=RESULTS, help="'' to skip")
    p.add_argument("--tuning", action="append", default=[], metavar="FIELD=VALUE",
                   help="another Tuning field for every run, e.g. hash_first_bytes=4194304 "
                   "(repeat for more)")
    p.add_argument("--calls", action="store_true",
                   help="only time single requirements calls of 100 to 100,000 files "
                   "against an idle server")
    # the worker's own arguments
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--blend", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--server", help=argparse.SUPPRESS)
    p.add_argument("--batch-files", type=int, default=DEFAULT_BATCH_FILES,
                   help=argparse.SUPPRESS)
    p.add_argument("--batch-bytes", type=int, default=DEFAULT_BATCH_BYTES,
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        logging.basicConfig(level=logging.WARNING)
        return worker(args)
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)
    if args.calls:
        print(call_costs(args))
        return 0
    t0 = time.perf_counter()
    load = os.getloadavg()[0]
    rows = measure(args)
    text = table(rows)
    print(text)
    if args.results and args.results != Path(""):
        args.results.write_text(
            "# Requirements batch sizes (issue 14)\n\n"
            f"Written by `benchmarks/bench_batches.py` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; "
            f"stores in {args.store_dir or 'the temp folder'}; run took "
            f"{time.perf_counter() - t0:.0f} s; load average at the start {load:.1f}, at "
            f"the end {os.getloadavg()[0]:.1f}. Wall = `Submission.run` in the submitting "
            "process; batch_bytes scaled with batch_files (64 MiB per 500)"
            f"{'; also ' + ', '.join(args.tuning) if args.tuning else ''}.\n\n"
            f"{text}\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
