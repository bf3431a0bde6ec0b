"""SIGTERM and an early Ctrl-C on the command line (issue 13, item 8): SIGTERM is a
cancel like Ctrl-C (no ``shaman-pack-*`` folder left, no checkout, exit 143), and Ctrl-C
while the command line is still starting prints no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_process import REPO, SAFETY_S, submit_held_at_first_upload

import blendgen

# Ctrl-C arrives exactly while the command line's own modules are being imported: a
# finder sends SIGINT to the process when ``shaman_addon.cli.main`` is looked up.
EARLY_CTRL_C = """
import os, runpy, signal, sys

class Interrupt:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "shaman_addon.cli.main":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, Interrupt)
sys.argv = ["shaman_addon", "deps", "whatever.blend"]
runpy.run_module("shaman_addon", run_name="__main__", alter_sys=True)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SHAMAN_SERVER_URL"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env["TMPDIR"] = str(tmp_path / "systmp")
    (tmp_path / "systmp").mkdir(exist_ok=True)
    return env


@pytest.mark.local_server_only
def test_sigterm_cancels_and_cleans_up(shaman_server: Any,
                                       one_library_production: blendgen.ProductionInfo,
                                       tmp_path: Path, fault_row: Callable[..., Any]) -> None:
    server = shaman_server
    proc = submit_held_at_first_upload(server, one_library_production.main_blend,
                                       _env(tmp_path))
    packs_while_running = sorted((tmp_path / "systmp").glob("shaman-pack-*"))
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=SAFETY_S)
    server.faults.reset()
    assert packs_while_running, "the production should need a rewritten copy"
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "cancelled" in err
    assert sorted((tmp_path / "systmp").glob("shaman-pack-*")) == []
    assert server.counters.checkouts == []
    fault_row("SIGTERM during the upload", area="fault", saw=err.strip().splitlines()[-1],
              end_state="exit 143; the shaman-pack-* folder removed; no checkout")


def test_ctrl_c_while_starting_prints_no_traceback(tmp_path: Path,
                                                   fault_row: Callable[..., Any]) -> None:
    proc = subprocess.run([sys.executable, "-c", EARLY_CTRL_C], cwd=REPO, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=SAFETY_S)
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "cancelled"
    fault_row("Ctrl-C while the command line is still importing", area="bad input",
              saw=proc.stderr.strip(), end_state="exit 130, one word, no traceback")


def _as_user_without_home() -> tuple[str, ...]:
    """Run as a uid with no passwd entry (as a container's arbitrary user does), still
    able to read the test's files; as another user, as it is."""
    if os.geteuid() != 0:
        return ()
    import pwd

    uid = 54321
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)  # no entry: the case at hand
    caps = "+dac_override,+dac_read_search"
    return ("setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            f"--inh-caps={caps}", f"--ambient-caps={caps}")


def test_no_home_runs_without_the_cache(shaman_server: Any,
                                        one_library_production: blendgen.ProductionInfo,
                                        tmp_path: Path, fault_row: Callable[..., Any]) -> None:
    env = {k: v for k, v in _env(tmp_path).items()
           if k not in ("HOME", "XDG_CACHE_HOME")}
    proc = subprocess.run([*_as_user_without_home(), sys.executable, "-m", "shaman_addon",
                           "submit", str(one_library_production.main_blend), "--server",
                           shaman_server.url, "--quiet"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=SAFETY_S)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warning = next(line for line in proc.stderr.splitlines() if "no home folder" in line)
    assert "--cache-dir" in warning
    assert "Checkout: " in proc.stdout
    fault_row("HOME unset for a user without a passwd entry", area="bad input", saw=warning,
              end_state="exit 0, checkout made, without the checksum cache")
