"""Pytest fixtures for the local Shaman server (re-exported by ``conftest.py``).

``shaman_server`` / ``shaman_server_spec`` / ``any_style_server`` run the server in this
process on a free loopback port with fresh storage; ``shaman_server_factory`` makes more
with chosen options; ``server_process`` runs it as a separate process a test can kill
and restart on the same port and storage.

Pointing the integration tests at another server: set ``SHAMAN_TEST_URL`` (base URL) and
``SHAMAN_TEST_STORAGE`` (the folder holding ``file-store/`` and ``jobs/``). Then
``shaman_server`` and ``any_style_server`` yield an ``ExternalServer`` (no counters, no
faults) and every test marked ``local_server_only`` is deselected (not skipped).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shaman_server import ShamanServer

__all__ = [
    "ExternalServer",
    "ServerProcess",
    "_content_salt_per_test",
    "any_style_server",
    "external_server",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "server_process",
    "shaman_server",
    "shaman_server_factory",
    "shaman_server_spec",
]

SERVER_SCRIPT = Path(__file__).resolve().with_name("shaman_server.py")
ENV_URL = "SHAMAN_TEST_URL"
ENV_STORAGE = "SHAMAN_TEST_STORAGE"
ENV_STYLE = "SHAMAN_TEST_STYLE"
ENV_SALT = "SHAMAN_TEST_CONTENT_SALT"


class ExternalServer:
    """Another Shaman server (a real Manager, say): its URL and its storage folder."""

    counters = None
    faults = None
    jobs = None  # no job-API knobs either (a local server's ``manager_jobs.ManagerJobs``)

    def __init__(self, url: str, storage: Path, style: str = "manager") -> None:
        self.url = url.rstrip("/")
        self.storage = Path(storage)
        self.style = style
        self.strict_paths = False

    def stored_path(self, sha: str, size: int) -> Path:
        return self.storage / "file-store" / "stored" / sha[:2] / sha[2:] / f"{size}.blob"

    def is_stored(self, sha: str, size: int) -> bool:
        return self.stored_path(sha, size).is_file()

    def checkout_dir(self, checkout_path: str) -> Path:
        return self.storage / "jobs" / checkout_path


def external_server() -> ExternalServer | None:
    """The server named by the environment, or None to use the local one."""
    url = os.environ.get(ENV_URL)
    storage = os.environ.get(ENV_STORAGE)
    if not url:
        return None
    if not storage:
        raise pytest.UsageError(f"{ENV_URL} is set, so {ENV_STORAGE} must name the folder "
                                "holding that server's file-store/ and jobs/")
    return ExternalServer(url, Path(storage), os.environ.get(ENV_STYLE, "manager"))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(ENV_URL):
        # The other server's store may hold what an earlier run sent: this run's test
        # contents get a salt of their own (blendgen, blend_templates), so a file a test
        # means to upload is new to that store.
        os.environ.setdefault(ENV_SALT, secrets.token_hex(8))
    config.addinivalue_line(
        "markers",
        "local_server_only: needs the local server's counters or fault injection; "
        f"deselected when {ENV_URL} points the tests at another server",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With an external server, drop (deselect, never skip) what it cannot do."""
    external = external_server()
    if external is None:
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        other_style = params.get("any_style_server", external.style) != external.style
        if item.get_closest_marker("local_server_only") or other_style:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


@pytest.fixture(autouse=True)
def _content_salt_per_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Against another server, each test's contents get a salt of its own (the store is
    shared by every test of the run, and by earlier runs)."""
    session = os.environ.get(ENV_SALT)
    if external_server() is None or not session:
        yield
        return
    own = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    os.environ[ENV_SALT] = f"{session}-{own}"
    try:
        yield
    finally:
        os.environ[ENV_SALT] = session


@pytest.fixture
def shaman_server_factory(tmp_path: Path) -> Iterator[Callable[..., ShamanServer]]:
    """``factory(style="manager", strict_paths=True, storage=None, port=0)``: a started server."""
    started: list[ShamanServer] = []

    def make(style: str = "manager", strict_paths: bool = True, storage: Path | None = None,
             port: int = 0) -> ShamanServer:
        folder = storage if storage is not None else tmp_path / f"shaman-{len(started)}"
        server = ShamanServer(folder, port=port, style=style, strict_paths=strict_paths)
        started.append(server)
        return server.start()

    yield make
    for server in reversed(started):
        server.stop()


@pytest.fixture
def shaman_server(shaman_server_factory: Callable[..., ShamanServer]) -> Any:
    """A manager-style server (or the external one named by the environment)."""
    external = external_server()
    if external is not None:
        return external
    return shaman_server_factory("manager")


@pytest.fixture
def shaman_server_spec(shaman_server_factory: Callable[..., ShamanServer]) -> ShamanServer:
    """A server that answers as the OpenAPI description says (204, 409, 424)."""
    return shaman_server_factory("spec")


@pytest.fixture(params=["manager", "spec"])
def any_style_server(request: pytest.FixtureRequest,
                     shaman_server_factory: Callable[..., ShamanServer]) -> Any:
    """Each test runs once per answer style (only the external server's when set)."""
    external = external_server()
    if external is not None:
        return external
    return shaman_server_factory(request.param)


class ServerProcess:
    """The server as its own process, for tests that kill and restart it."""

    def __init__(self, storage: Path, *, port: int = 0, style: str = "manager",
                 strict_paths: bool = True) -> None:
        self.storage = Path(storage)
        self.port = port
        self.style = style
        self.strict_paths = strict_paths
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> ServerProcess:
        args = [sys.executable, str(SERVER_SCRIPT), "--host", "127.0.0.1",
                "--port", str(self.port), "--storage", str(self.storage), "--style", self.style]
        if not self.strict_paths:
            args.append("--no-strict-paths")
        # stderr to a file, not a pipe: nobody reads it while the server runs.
        with tempfile.TemporaryFile(mode="w+") as errors:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors, text=True)
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if not line.startswith("listening on "):
                proc.kill()
                proc.communicate(timeout=30)
                errors.seek(0)
                raise RuntimeError(f"the Shaman server process did not start: {line!r}\n"
                                   f"{errors.read()}")
        self.proc = proc
        self.url = line.removeprefix("listening on ")
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def kill(self) -> None:
        """SIGKILL: the server dies at once, mid-request if need be."""
        self._end(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM: the server stops the way an operator would stop it."""
        self._end(signal.SIGTERM)

    def restart(self) -> ServerProcess:
        """Kill if running, then start again on the same port and storage."""
        self.kill()
        return self.start()

    def stored_path(self, sha: str, size: int) -> Path:
        return self.storage / "file-store" / "stored" / sha[:2] / sha[2:] / f"{size}.blob"

    def is_stored(self, sha: str, size: int) -> bool:
        return self.stored_path(sha, size).is_file()

    def checkout_dir(self, checkout_path: str) -> Path:
        return self.storage / "jobs" / checkout_path

    def _end(self, sig: signal.Signals) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
        proc.communicate(timeout=30)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``factory(style="manager", port=0, storage=None, strict_paths=True)``: a started process."""
    started: list[ServerProcess] = []

    def make(style: str = "manager", port: int = 0, storage: Path | None = None,
             strict_paths: bool = True) -> ServerProcess:
        folder = storage if storage is not None else tmp_path / f"shaman-proc-{len(started)}"
        server = ServerProcess(folder, port=port, style=style, strict_paths=strict_paths)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.kill()
