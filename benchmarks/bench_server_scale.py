"""The local Shaman server at scale: one requirements call and one checkout/create call
of N files, every blob already stored, store in /dev/shm (issue 14, item 3).

    .venv/bin/python benchmarks/bench_server_scale.py [--before FILE] [--rounds 3]
                                                      [--sizes 3000,100093]

The store is written directly in the server's layout
(``file-store/stored/<sha[:2]>/<sha[2:]>/<size>.blob``), once, and shared by every
server measured. Each server (this tree's ``tests/support/shaman_server.py``, and with
``--before FILE`` another version of it, e.g. main's
``git show main:tests/support/shaman_server.py > /tmp/main_server.py``) runs in its own
process; the client sends with ``http.client`` over one keep-alive connection and times
each call from the first byte sent to the last byte read; the server's CPU seconds come
from ``/proc/<pid>/stat`` around the call. The floor, measured in the same round, is a
POST of a body of the same size to ``/test/reset`` (read whole, answered 204): what the
transfer alone costs. Each figure is the best of ``--rounds`` rounds (the 2 cores are
shared, so the best is the least disturbed). Small requests: 200 requirements calls and
50 checkouts of 20 files each, total wall time.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUPPORT = REPO / "tests" / "support"
SERVER_SCRIPT = SUPPORT / "shaman_server.py"
PER_FOLDER = 200
SMALL_FILES = 20
SMALL_REQUIREMENTS = 200
SMALL_CHECKOUTS = 50


def file_specs(count: int) -> list[dict[str, object]]:
    """``count`` small files, 200 a folder; sha = sha256 of the content."""
    specs: list[dict[str, object]] = []
    for i in range(count):
        data = f"bulk file {i}\n".encode()
        specs.append({"sha": hashlib.sha256(data).hexdigest(), "size": len(data),
                      "path": f"bulk/b{i // PER_FOLDER:04d}/f{i:06d}.png"})
    return specs


def write_store(storage: Path, count: int) -> None:
    """Every blob in the server's layout, as an upload would have left it."""
    stored = storage / "file-store" / "stored"
    for i in range(count):
        data = f"bulk file {i}\n".encode()
        sha = hashlib.sha256(data).hexdigest()
        folder = stored / sha[:2] / sha[2:]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{len(data)}.blob").write_bytes(data)


class Proc:
    """One server process on ``storage``."""

    def __init__(self, script: Path, storage: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(SUPPORT))
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--port", "0", "--storage", str(storage)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        host, port = line.split("//")[1].rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def post(self, path: str, body: bytes) -> tuple[int, bytes, float, float]:
        """(status, answer, wall s, server CPU s) of one POST."""
        cpu = self.cpu_s()
        start = time.perf_counter()
        self.conn.request("POST", path, body, {"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        answer = resp.read()
        wall = time.perf_counter() - start
        return resp.status, answer, wall, self.cpu_s() - cpu

    def stop(self) -> None:
        self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Row:
    """Best figures of one server at one size (seconds)."""

    floor: list[float] = field(default_factory=list)
    req: list[tuple[float, float]] = field(default_factory=list)
    create: list[tuple[float, float]] = field(default_factory=list)


def measure_round(proc: Proc, storage: Path, specs: list[dict[str, object]], row: Row,
                  tag: str) -> None:
    req_body = json.dumps({"files": specs}).encode()
    status, _, wall, _ = proc.post("/test/reset", req_body)
    assert status == 204, status
    row.floor.append(wall)
    status, answer, wall, cpu = proc.post("/api/v3/shaman/checkout/requirements", req_body)
    assert status == 200 and json.loads(answer) == {"files": []}, (status, answer[:200])
    row.req.append((wall, cpu))
    checkout = f"bench/{tag}-{len(row.create)}"
    body = json.dumps({"files": specs, "checkoutPath": checkout}).encode()
    status, answer, wall, cpu = proc.post("/api/v3/shaman/checkout/create", body)
    assert status == 200, (status, answer[:200])
    row.create.append((wall, cpu))
    made = storage / "jobs" / json.loads(answer)["checkoutPath"]
    assert os.readlink(made / str(specs[-1]["path"])).endswith(f"{specs[-1]['size']}.blob")
    shutil.rmtree(made)


def measure_small(proc: Proc, storage: Path, specs: list[dict[str, object]],
                  tag: str) -> tuple[float, float]:
    """(wall s of 200 small requirements calls, wall s of 50 small checkouts)."""
    start = time.perf_counter()
    for k in range(SMALL_REQUIREMENTS):
        part = specs[(k * SMALL_FILES) % 2000:][:SMALL_FILES]
        status, _, _, _ = proc.post("/api/v3/shaman/checkout/requirements",
                                    json.dumps({"files": part}).encode())
        assert status == 200
    req = time.perf_counter() - start
    start = time.perf_counter()
    for k in range(SMALL_CHECKOUTS):
        part = specs[(k * SMALL_FILES) % 2000:][:SMALL_FILES]
        body = json.dumps({"files": part, "checkoutPath": f"small/{tag}-{k}"}).encode()
        status, _, _, _ = proc.post("/api/v3/shaman/checkout/create", body)
        assert status == 200
    create = time.perf_counter() - start
    shutil.rmtree(storage / "jobs" / "small", ignore_errors=True)
    return req, create


def best(pairs: list[tuple[float, float]]) -> str:
    wall = min(w for w, _ in pairs)
    cpu = min(c for _, c in pairs)
    return f"{wall:7.3f} s wall {cpu:6.2f} s CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="another shaman_server.py to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="3000,100093")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    servers = {"this tree": SERVER_SCRIPT}
    if args.before:
        servers = {"before": args.before.resolve(), **servers}
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    storage = Path(tempfile.mkdtemp(prefix="shaman-scale-", dir=shm))
    try:
        start = time.perf_counter()
        write_store(storage, max(sizes))
        print(f"store of {max(sizes):,} blobs written in {time.perf_counter() - start:.1f} s"
              f" ({storage})")
        all_specs = file_specs(max(sizes))
        rows: dict[tuple[str, int], Row] = {(n, s): Row() for n in servers for s in sizes}
        small: dict[str, list[tuple[float, float]]] = {n: [] for n in servers}
        procs = {name: Proc(script, storage) for name, script in servers.items()}
        try:
            for r in range(max(1, min(args.rounds, 10))):
                for name, proc in procs.items():  # interleaved: same disturbance for both
                    tag = f"{name.replace(' ', '-')}-{r}"
                    small[name].append(measure_small(proc, storage, all_specs, tag))
                    for size in sizes:
                        measure_round(proc, storage, all_specs[:size], rows[(name, size)],
                                      f"{tag}-{size}")
        finally:
            for proc in procs.values():
                proc.stop()
        print(f"\nbest of {args.rounds} rounds; floor = the same body POSTed to /test/reset")
        print(f"{'server':<10} {'files':>8} {'floor':>8}   {'requirements':<30} "
              f"{'checkout/create':<30}")
        for (name, size), row in rows.items():
            print(f"{name:<10} {size:>8,} {min(row.floor):6.3f} s   {best(row.req):<30} "
                  f"{best(row.create):<30}")
        print(f"\nsmall requests ({SMALL_FILES} files each), total wall time:")
        for name, pairs in small.items():
            print(f"{name:<10} {SMALL_REQUIREMENTS} requirements {min(p[0] for p in pairs):.3f} s"
                  f"   {SMALL_CHECKOUTS} checkouts {min(p[1] for p in pairs):.3f} s")
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
