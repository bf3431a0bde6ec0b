"""Upload one big sparse file with the Shaman client and report how much resident memory
the process grew by, as JSON on stdout.

Run as its own process (never imports bpy) so the numbers are this upload's alone::

    python tests/upload_memory_probe.py --url http://127.0.0.1:PORT --size 1073741824 \
        --dir /tmp/somewhere

The peak is read from ``VmHWM`` after resetting it (``/proc/self/clear_refs``) once the
client is warmed up, so only the upload itself counts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shaman_addon.shaman.client import ClientSettings, ShamanClient  # noqa: E402

MIB = 1024 * 1024


def proc_status_kib(field: str) -> int:
    """A ``VmRSS``/``VmHWM``-style line of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    """Make VmHWM start again from the current RSS (Linux 4.0+)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def streamed_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(MIB)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            digest.update(view[:n])
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--chunk-size", type=int, default=ClientSettings().chunk_size)
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"sparse-{args.size}.bin"
    with open(path, "wb") as f:
        f.truncate(args.size)  # a hole: no disk used, reads back as zeros

    started = time.perf_counter()
    sha = streamed_sha256(path)
    hash_seconds = time.perf_counter() - started

    client = ShamanClient(args.url, ClientSettings(chunk_size=args.chunk_size))
    client.configuration()  # warm up: lazy imports, the pool's first connection
    rss_before = proc_status_kib("VmRSS")
    peak_was_reset = reset_peak()
    hwm_before = proc_status_kib("VmHWM")

    sent = 0

    def on_bytes(n: int) -> None:
        nonlocal sent
        sent += n

    started = time.perf_counter()
    result = client.upload(sha, args.size, path, on_bytes=on_bytes)
    upload_seconds = time.perf_counter() - started
    rss_after = proc_status_kib("VmRSS")
    hwm_after = proc_status_kib("VmHWM")
    client.close()
    path.unlink()

    baseline = rss_before if peak_was_reset else min(rss_before, hwm_before)
    report = {
        "size": args.size,
        "sha": sha,
        "result": result.value,
        "bytes_reported": sent,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "hwm_before_kib": hwm_before,
        "hwm_after_kib": hwm_after,
        "peak_was_reset": peak_was_reset,
        "growth_kib": max(hwm_after, rss_after) - baseline,
        "hash_seconds": round(hash_seconds, 2),
        "upload_seconds": round(upload_seconds, 2),
        "upload_mib_per_s": round(args.size / MIB / upload_seconds, 1) if upload_seconds else 0,
        "bpy_imported": "bpy" in sys.modules,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
