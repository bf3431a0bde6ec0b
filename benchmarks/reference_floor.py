"""The fixed reference the benchmark compares against: the plain sequential path.

Written once and not tuned afterwards (issue 7). On the same files and server:
read + SHA-256 of every byte once, in one thread, 1 MiB reads; then every file uploaded
one after another with the standard library's ``http.client`` over one keep-alive
connection. Prints one JSON document: seconds for each half, requests and bytes sent.

    python benchmarks/reference_floor.py --server URL FILE_LIST.txt
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import sys
import time
import urllib.parse
from pathlib import Path

CHUNK = 1 << 20


def hash_all(paths: list[Path]) -> list[tuple[Path, str, int]]:
    out = []
    for path in paths:
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        out.append((path, digest.hexdigest(), size))
    return out


def upload_all(server: str, files: list[tuple[Path, str, int]]) -> tuple[int, int]:
    url = urllib.parse.urlsplit(server)
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, blocksize=CHUNK)
    requests_made = bytes_sent = 0
    for path, sha, size in files:
        for _attempt in range(3):
            try:
                with open(path, "rb") as body:
                    conn.request(
                        "POST", f"/api/v3/shaman/files/{sha}/{size}", body=body,
                        headers={"Content-Type": "application/octet-stream",
                                 "Content-Length": str(size)},
                    )
                    response = conn.getresponse()
                    response.read()
                requests_made += 1
                if response.status in (200, 204):
                    bytes_sent += size
                if response.will_close:
                    conn.close()
                break
            except (ConnectionError, http.client.HTTPException):
                requests_made += 1
                conn.close()
    conn.close()
    return requests_made, bytes_sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", required=True)
    parser.add_argument("file_list", type=Path, help="a text file, one absolute path per line")
    args = parser.parse_args()
    paths = [Path(line) for line in args.file_list.read_text().splitlines() if line.strip()]

    t0 = time.perf_counter()
    hashed = hash_all(paths)
    t1 = time.perf_counter()
    requests_made, bytes_sent = upload_all(args.server, hashed)
    t2 = time.perf_counter()
    json.dump(
        {"files": len(paths), "bytes": sum(s for _, _, s in hashed), "hash_s": t1 - t0,
         "upload_s": t2 - t1, "total_s": t2 - t0, "requests": requests_made,
         "bytes_sent": bytes_sent},
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
