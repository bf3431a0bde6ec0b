"""How fast the shaped link carries one bulk stream, and what CPU it costs.

    .venv/bin/python benchmarks/shaped_link_speed.py [--profile lan] [--mb 500] [--thread]

A sink on 127.0.0.1 reads and discards; a raw socket sender pushes ``--mb`` MB through
the proxy (``benchmarks/shaped_link.py`` as its own process, or on a thread of this one
with ``--thread``, as the benchmark runs it). Prints the rate achieved at the sink, the
link's nominal rate, and the proxy's CPU seconds (user + system) over the transfer.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import shaped_link  # noqa: E402

CHUNK = 1 << 20


def sink(listener: socket.socket, total: int, done: list[float]) -> None:
    conn, _ = listener.accept()
    buf = bytearray(CHUNK)
    got = 0
    while got < total:
        n = conn.recv_into(buf)
        if not n:
            break
        got += n
    done.append(time.perf_counter())
    conn.close()


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=sorted(shaped_link.PROFILES), default="lan")
    p.add_argument("--mb", type=float, default=500.0)
    p.add_argument("--thread", action="store_true", help="the proxy on a thread of this process")
    args = p.parse_args()
    total = int(args.mb * 1e6)
    profile = shaped_link.PROFILES[args.profile]

    listener = socket.create_server((shaped_link.LOOPBACK, 0))
    target = listener.getsockname()[1]
    proc = None
    if args.thread:
        proxy = shaped_link.ShapedLink((shaped_link.LOOPBACK, target), profile)
        port = proxy.start()
        cpu = proxy.cpu_s
    else:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "shaped_link.py"), "--target",
             f"{shaped_link.LOOPBACK}:{target}", "--profile", args.profile],
            stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        pid = proc.pid

        def cpu() -> float:
            return proc_cpu(pid)

    done: list[float] = []
    reader = threading.Thread(target=sink, args=(listener, total, done))
    reader.start()
    out = socket.create_connection((shaped_link.LOOPBACK, port))
    block = os.urandom(CHUNK)
    cpu0 = cpu() or 0.0
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        n = min(CHUNK, total - sent)
        out.sendall(block[:n])
        sent += n
    reader.join()
    wall = done[0] - t0
    used = (cpu() or 0.0) - cpu0
    out.close()
    if proc is not None:
        proc.terminate()
        proc.wait()
    else:
        proxy.stop()
    print(f"{args.profile}: {total / 1e6:.0f} MB in {wall:.2f} s = "
          f"{total * 8 / wall / 1e6:.0f} Mbit/s (link {profile.rate_bps / 1e6:.0f} Mbit/s, "
          f"floor {profile.floor_s(total):.2f} s); proxy CPU {used:.2f} s "
          f"({used / wall * 100:.0f}% of one core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
