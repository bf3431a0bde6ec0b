"""Install it like a tool (issue 13 item 11): ``pip install .`` in a fresh virtual
environment gives a ``shaman-submit`` command that works from any folder, with the same
subcommands as ``python -m shaman_addon``. pip reads this machine's configured index and
the repository's ``wheels/`` (blender-asset-tracer); nothing else leaves loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import blendgen

REPO = Path(__file__).resolve().parents[2]
SAFETY_S = 600


def _repository_copy(dest: Path) -> Path:
    """The files git knows or would add (as ``scripts/build-extension.sh`` packs them), so
    the install builds from what a clone holds and leaves nothing in the worktree."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True, timeout=60).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install .`` into a fresh venv; the folder holding its ``shaman-submit``."""
    root = tmp_path_factory.mktemp("install")
    src = _repository_copy(root / "clone")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=SAFETY_S)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--find-links", str(REPO / "wheels"), "."],
        cwd=src, capture_output=True, text=True, timeout=SAFETY_S)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    return venv / "bin"


def test_pip_install_gives_a_shaman_submit_command_that_runs_anywhere(
    installed: Path, shaman_server: Any, tmp_path: Path
) -> None:
    command = installed / "shaman-submit"
    assert command.is_file()
    env = {k: v for k, v in os.environ.items()
           if k not in ("SHAMAN_SERVER_URL", "PYTHONPATH", "VIRTUAL_ENV")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    anywhere = tmp_path / "somewhere else"
    anywhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(command), *args], cwd=anywhere, env=env,
                              capture_output=True, text=True, timeout=SAFETY_S)

    helped = run("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: shaman-submit ")
    for sub in ("deps", "submit", "check", "job-types"):
        assert sub in helped.stdout
    # the installed package is the one imported, not the repository
    where = subprocess.run([str(installed / "python"), "-c",
                            "import shaman_addon; print(shaman_addon.__file__)"],
                           cwd=anywhere, env=env, capture_output=True, text=True, timeout=60)
    assert str(installed.parent) in where.stdout, where
    info = blendgen.generate(tmp_path / "prod", libraries=1, files=2, kinds="basic")
    deps = run("deps", str(info.main_blend), "--json")
    assert deps.returncode == 0, deps.stderr
    assert json.loads(deps.stdout)["file_count"] == len(info.expected_files)
    sent = run("submit", str(info.main_blend), "--server", shaman_server.url, "--json",
               "--checkout-path", f"installed-{tmp_path.name}")
    assert sent.returncode == 0, sent.stderr
    checkout = json.loads(sent.stdout)["checkout_path"]
    assert (shaman_server.checkout_dir(checkout) / "shots" / "main.blend").exists()
    checked = run("check", "--server", shaman_server.url)
    assert checked.returncode == 0, checked.stderr
