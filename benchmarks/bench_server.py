"""The Shaman server a benchmark case talks to: our local one in its own process, or one
given with ``--server URL --storage DIR``.

The server runs in a separate process so that its CPU time is not charged to (or
fighting the GIL of) the process being measured. A cold case needs an empty store: the
local server is started afresh on new storage; an external one has its store emptied
through ``--storage`` (or the case is marked as not cold).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("bench.server")

REPO = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = REPO / "tests" / "support" / "shaman_server.py"


@dataclass
class Counts:
    """What the server saw during one measured run (None: the server cannot tell)."""

    requests: int | None
    bytes_received: int | None
    by_endpoint: dict[str, int]
    requirements_calls: int | None
    bytes_by_file: dict[tuple[str, int], int]

    @classmethod
    def unknown(cls) -> Counts:
        return cls(None, None, {}, None, {})


class Server:
    """One Shaman server for a benchmark case; ``fresh()`` gives an empty store."""

    def __init__(self, url: str = "", storage: Path | None = None, python: str = "",
                 store_parent: Path | None = None) -> None:
        self.external = bool(url)
        self.url = url.rstrip("/")
        self.storage = storage
        self.python = python or sys.executable
        self._proc: subprocess.Popen[str] | None = None
        self._tmp: Path | None = None
        self.store_parent = store_parent  # where fresh stores go (None: the temp folder)
        self.has_counters = False

    # -- lifecycle
    def fresh(self) -> Server:
        """Start (or empty) the server so its store holds nothing."""
        if self.external:
            if self.storage is not None:
                for sub in ("file-store", "jobs"):
                    shutil.rmtree(self.storage / sub, ignore_errors=True)
            else:
                log.warning("external server without --storage: its store cannot be emptied, "
                            "so 'cold' cases are not cold")
        else:
            self.stop()
            self._tmp = Path(tempfile.mkdtemp(prefix="shaman-bench-store-",
                                              dir=self.store_parent))
            self._start(self._tmp)
        self.has_counters = self._probe_counters()
        return self

    def _start(self, storage: Path) -> None:
        cmd = [self.python, str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0",
               "--storage", str(storage)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            proc.kill()
            raise RuntimeError(f"the local Shaman server did not start: {line!r}")
        self._proc = proc
        self.url = line.split()[-1]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- counters
    def _call(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.url + path, method=method,
                                     data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def _probe_counters(self) -> bool:
        try:
            self._call("GET", "/test/counters")
            return True
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def cpu_s(self) -> float | None:
        """CPU seconds (user + system) the local server process has used so far."""
        if self._proc is None:
            return None
        try:
            fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_counts(self) -> None:
        self._cpu_mark = self.cpu_s()
        if self.has_counters:
            self._call("POST", "/test/reset")

    def cpu_since_reset(self) -> float | None:
        now, mark = self.cpu_s(), getattr(self, "_cpu_mark", None)
        return None if now is None or mark is None else now - mark

    def counts(self) -> Counts:
        if not self.has_counters:
            return Counts.unknown()
        # Counters are bumped before the client hears back; a short settle is still
        # kind to a lingering close (the server drains an early-answered body).
        time.sleep(0.05)
        data = self._call("GET", "/test/counters")
        by_endpoint = {k: int(v) for k, v in data["requests"].items()}
        return Counts(
            requests=sum(by_endpoint.values()),
            bytes_received=int(data["bytes_received"]),
            by_endpoint=by_endpoint,
            requirements_calls=by_endpoint.get("requirements", 0),
            bytes_by_file={(s, int(z)): int(n) for s, z, n in data["bytes_received_by_file"]},
        )
