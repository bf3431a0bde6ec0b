"""``python -m shaman_addon submit`` and ``check`` as a user runs them: real processes,
real .blend files, the local server over loopback."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_process import REPO, SAFETY_S, submit_held_at_first_upload

import blendgen


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SHAMAN_SERVER_URL"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shaman_addon", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=SAFETY_S)


def test_submit_json_with_server_from_the_environment(
    shaman_server: Any, one_library_production: blendgen.ProductionInfo, tmp_path: Path
) -> None:
    env = _env(tmp_path, SHAMAN_SERVER_URL=shaman_server.url)
    out = cli("submit", str(one_library_production.main_blend), "--json", env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) >= {
        "checkout_path", "blend_checkout_path", "worker_blend_path", "files_total",
        "bytes_total", "files_uploaded", "bytes_uploaded", "files_already_stored",
        "bytes_already_stored", "missing", "warnings", "phase_seconds", "dry_run",
    }
    assert doc["worker_blend_path"] == f"{{jobs}}/{doc['checkout_path']}/shots/main.blend"
    assert (shaman_server.storage / "jobs" / doc["checkout_path"] / "shots/main.blend").is_file()
    assert doc["files_uploaded"] + doc["files_already_stored"] == doc["files_total"] > 5
    if shaman_server.counters is not None:  # a fresh local store: every file is sent
        assert doc["files_uploaded"] == doc["files_total"]
    # Default cache folder under $XDG_CACHE_HOME, history written there.
    history = tmp_path / "xdg" / "shaman-submitter" / "history.jsonl"
    record = json.loads(history.read_text().splitlines()[-1])
    assert record["checkout_path"] == doc["checkout_path"]
    assert record["app"]["interface"] == "command line"
    # Not a terminal: plain progress lines on stderr, one per phase.
    assert "Done: checkout" in out.stderr and "\r" not in out.stderr
    again = cli("submit", str(one_library_production.main_blend), "--json", "--quiet", env=env)
    assert again.returncode == 0 and again.stderr == ""
    assert json.loads(again.stdout)["bytes_uploaded"] == 0


def test_submit_human_output_and_server_flag(shaman_server: Any,
                                             one_library_production: blendgen.ProductionInfo,
                                             tmp_path: Path) -> None:
    out = cli("submit", str(one_library_production.main_blend), "--server", shaman_server.url,
              "--checkout-path", "proj/{blend_name}-cli", "--cache-dir", str(tmp_path / "c"),
              env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    # (a store that already holds proj/main-cli, another server's, gives it a suffix)
    checkout = out.stdout.splitlines()[0].removeprefix("Checkout: ")
    assert checkout == "proj/main-cli" or checkout.startswith("proj/main-cli-"), out.stdout
    assert f"Workers open: {{jobs}}/{checkout}/shots/main.blend" in out.stdout
    assert (tmp_path / "c" / "history.jsonl").exists()


def test_no_server_is_a_usage_error(one_library_production: blendgen.ProductionInfo,
                                    tmp_path: Path) -> None:
    out = cli("submit", str(one_library_production.main_blend), env=_env(tmp_path))
    assert out.returncode == 2
    assert "SHAMAN_SERVER_URL" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.local_server_only
def test_bad_template_and_bad_jobs_are_usage_errors(shaman_server: Any,
                                                    one_library_production: blendgen.ProductionInfo,
                                                    tmp_path: Path) -> None:
    env = _env(tmp_path, SHAMAN_SERVER_URL=shaman_server.url)
    out = cli("submit", str(one_library_production.main_blend), "--checkout-path", "{shot}",
              env=env)
    assert out.returncode == 2 and "{shot}" in out.stderr
    out = cli("submit", str(one_library_production.main_blend), "--jobs", "0", env=env)
    assert out.returncode == 2 and "--jobs" in out.stderr
    out = cli("submit", str(one_library_production.main_blend), "--connections", "0", env=env)
    assert out.returncode == 2 and "--connections must be at least 1" in out.stderr
    out = cli("submit", str(one_library_production.main_blend), "--server", "ftp://farm", env=env)
    assert out.returncode == 2 and "ftp://farm" in out.stderr and "Traceback" not in out.stderr
    assert shaman_server.counters.requests == {}


@pytest.mark.local_server_only
def test_dry_run_creates_nothing(shaman_server: Any,
                                 one_library_production: blendgen.ProductionInfo,
                                 tmp_path: Path) -> None:
    out = cli("submit", str(one_library_production.main_blend), "--server", shaman_server.url,
              "--dry-run", env=_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "Would upload" in out.stdout and "would upload: shots/main.blend" in out.stdout
    assert "upload" not in shaman_server.counters.requests
    assert "create" not in shaman_server.counters.requests
    assert list((shaman_server.storage / "jobs").iterdir()) == []


@pytest.mark.local_server_only
def test_fail_on_missing_exits_3(shaman_server: Any, tmp_path: Path) -> None:
    info = blendgen.generate(tmp_path / "prod", libraries=1, files=0, kinds="basic")
    gone = info.kinds["library texture"][0]
    gone.unlink()
    env = _env(tmp_path, SHAMAN_SERVER_URL=shaman_server.url)
    out = cli("submit", str(info.main_blend), "--fail-on-missing", "--json", env=env)
    assert out.returncode == 3
    assert json.loads(out.stdout)["error_type"] == "MissingDependencies"
    assert gone.name in out.stderr
    assert shaman_server.counters.requests == {}
    listed = cli("submit", str(info.main_blend), env=env)  # without the flag: goes ahead
    assert listed.returncode == 0
    assert "MISSING" in listed.stderr and gone.name in listed.stderr


@pytest.mark.local_server_only
def test_server_failure_exits_1(shaman_server: Any, one_library_production: blendgen.ProductionInfo,
                                tmp_path: Path) -> None:
    shaman_server.faults.shaman_disabled = True
    out = cli("submit", str(one_library_production.main_blend), "--server", shaman_server.url,
              env=_env(tmp_path))
    assert out.returncode == 1
    assert "shaman" in out.stderr.lower() and "Traceback" not in out.stderr


@pytest.mark.local_server_only
def test_ctrl_c_cancels_cleanly(shaman_server: Any, one_library_production: blendgen.ProductionInfo,
                                tmp_path: Path) -> None:
    server = shaman_server
    proc = submit_held_at_first_upload(server, one_library_production.main_blend,
                                       _env(tmp_path))
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=SAFETY_S)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "cancelled" in err
    assert server.counters.checkouts == []
    server.faults.reset()


def test_progress_bar_on_a_terminal(shaman_server: Any,
                                    one_library_production: blendgen.ProductionInfo,
                                    tmp_path: Path) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shaman_addon", "submit", str(one_library_production.main_blend),
         "--server", shaman_server.url], cwd=REPO, env=_env(tmp_path),
        stdout=subprocess.PIPE, stderr=slave, text=True,
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], SAFETY_S)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    proc.communicate(timeout=SAFETY_S)
    assert proc.returncode == 0
    text = seen.decode("utf-8", "replace")
    assert "\r[" in text and "100%" in text and "#" * 20 in text


def test_check_command(any_style_server: Any, tmp_path: Path) -> None:
    out = cli("check", "--server", any_style_server.url, env=_env(tmp_path))
    assert out.returncode == 0 and "Shaman enabled" in out.stdout
    env = _env(tmp_path, SHAMAN_SERVER_URL=any_style_server.url)
    doc = json.loads(cli("check", "--json", env=env).stdout)
    assert doc == {**doc, "ok": True, "reachable": True, "is_manager": True,
                   "shaman_enabled": True}
    assert doc["server"] == any_style_server.url


@pytest.mark.local_server_only
def test_check_command_failures(shaman_server: Any, tmp_path: Path) -> None:
    shaman_server.faults.shaman_disabled = True
    out = cli("check", "--server", shaman_server.url, "--json", env=_env(tmp_path))
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["reachable"] and doc["is_manager"] and not doc["shaman_enabled"]
    down = cli("check", "--server", "http://127.0.0.1:9", env=_env(tmp_path))
    assert down.returncode == 1 and "127.0.0.1:9" in down.stdout
    assert cli("check", env=_env(tmp_path)).returncode == 2
