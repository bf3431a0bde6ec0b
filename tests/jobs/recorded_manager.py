"""A loopback HTTP server that answers the job API exactly as a real Manager 3.9 did
(``support/data/real-manager-jobs-transcript.json``): for the client's own tests, which
must hold whatever the local test server becomes. A request the recording does not have
gets a 599, so a test never passes on an answer nobody recorded.

``answer(method, path, status, body)`` replaces one endpoint's answer (an old Manager, a
huge answer); ``pick(method, path, label)`` chooses between recordings of the same GET.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TRANSCRIPT = Path(__file__).resolve().parents[1] / "support" / "data" / (
    "real-manager-jobs-transcript.json")


def recorded_steps() -> dict[str, dict[str, Any]]:
    doc = json.loads(TRANSCRIPT.read_text("utf-8"))
    return {step["label"]: step for step in doc["steps"]}


def recorded_body(label: str) -> Any:
    """The JSON a real client sent in step ``label``."""
    return json.loads(recorded_steps()[label]["request"]["body"])


class RecordedManager:
    def __init__(self) -> None:
        self.steps = list(recorded_steps().values())
        self.overrides: dict[tuple[str, str], tuple[int, bytes]] = {}
        self.picks: dict[tuple[str, str], str] = {}
        self.received: list[tuple[str, str, Any]] = []
        self.drips: set[tuple[str, str]] = set()
        self._closing = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner._serve(self, "GET")

            def do_POST(self) -> None:
                owner._serve(self, "POST")

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def answer(self, method: str, path: str, status: int, body: bytes) -> None:
        self.overrides[(method, path)] = (status, body)

    def pick(self, method: str, path: str, label: str) -> None:
        self.picks[(method, path)] = label

    def drip(self, method: str, path: str) -> None:
        """Answer 200 and then one byte of the body every 50 ms, for a minute."""
        self.drips.add((method, path))

    def close(self) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _find(self, method: str, path: str, body: Any) -> dict[str, Any] | None:
        chosen = self.picks.get((method, path))
        found = None
        for step in self.steps:
            request = step["request"]
            if request["method"] != method or request["path"] != path:
                continue
            if chosen is not None and step["label"] != chosen:
                continue
            if method == "POST" and json.loads(request["body"]) != body:
                continue
            found = step
        return found

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.received.append((method, handler.path, body))
        if (method, handler.path) in self.drips:
            self._drip(handler)
            return
        override = self.overrides.get((method, handler.path))
        if override is not None:
            status, content, ctype = override[0], override[1], "application/json"
        else:
            step = self._find(method, handler.path, body)
            if step is None:
                status, content, ctype = 599, b'{"message":"not recorded"}', "application/json"
            else:
                response = step["response"]
                status, content = response["status"], response["body"].encode("utf-8")
                ctype = response["content_type"]
        handler.send_response(status)
        if ctype:
            handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    def _drip(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "1200")
        handler.end_headers()
        try:
            for _ in range(1200):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                if self._closing.wait(0.05):
                    return
        except OSError:
            return  # the client gave up: what the test wants
