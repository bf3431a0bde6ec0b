"""Files the artist did not mean to send, and files that cannot be sent (issue 13, items
4 and 5): a real .blend made by bpy, the command line run as a process, the local server.

Files from outside the project (absolute paths, and symlinks inside the project whose
target is elsewhere) are listed with what uses them in ``deps``, the dry run and the
result; files in credential stores (``~/.ssh``, ``~/.aws``...) are refused unless
allowed; an unreadable file or a system file (``/proc``, ``/dev``) is a missing-file
entry that says what it is, in ``deps`` and ``submit`` alike, and is never read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fault_blends import make_blend
from fault_helpers import disk_state

REPO = Path(__file__).resolve().parents[2]
SAFETY_S = 300


@dataclass(frozen=True)
class Shot:
    blend: Path
    root: Path
    inside: Path
    outside: Path
    link_out: Path  # in the project, a link to ``outside``
    ssh_key: Path  # referenced by its absolute path
    link_creds: Path  # in the project, a link to a file in .aws


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Shot:
    base = tmp_path_factory.mktemp("unsent")
    root = base / "project"
    (root / ".blender_project").mkdir(parents=True)
    (root / "tex").mkdir()
    home = base / "home"
    for folder in (home / ".ssh", home / ".aws", base / "elsewhere"):
        folder.mkdir(parents=True)
    ssh_key = home / ".ssh" / "id_rsa"
    ssh_key.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY----- not a real one\n")
    (home / ".aws" / "credentials").write_bytes(b"[default]\naws_secret_access_key=x\n")
    inside = root / "tex" / "in.png"
    inside.write_bytes(b"inside the project")
    outside = base / "elsewhere" / "out.png"
    outside.write_bytes(b"outside the project")
    link_out = root / "tex" / "link.png"
    link_out.symlink_to(outside)
    link_creds = root / "tex" / "creds.png"
    link_creds.symlink_to(home / ".aws" / "credentials")
    blend = make_blend(root / "shot.blend", ["//tex/in.png", "//tex/link.png",
                                              "//tex/creds.png", str(ssh_key), str(outside)])
    return Shot(blend, root, inside, outside, link_out, ssh_key, link_creds)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SHAMAN_SERVER_URL"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    return env


def cli(*args: str, tmp_path: Path,
        prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "shaman_addon", *args], cwd=REPO,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=SAFETY_S)


def _by_path(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["path"]: e for e in entries}


def test_deps_lists_outside_files_and_refuses_credential_files(
        shot: Shot, tmp_path: Path, fault_row: Callable[..., Any]) -> None:
    out = cli("deps", str(shot.blend), "--json", tmp_path=tmp_path)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    outside = _by_path(doc["outside_project"])
    assert set(outside) == {str(shot.outside), str(shot.link_out)}
    assert outside[str(shot.link_out)]["target"] == str(shot.outside)
    assert all(e["referenced_by"] and str(shot.blend) in e["referenced_by"][0]
               for e in outside.values())
    refused = _by_path(doc["refused"])
    assert set(refused) == {str(shot.ssh_key), str(shot.link_creds)}
    assert refused[str(shot.ssh_key)]["credential_store"] == ".ssh"
    assert refused[str(shot.link_creds)]["credential_store"] == ".aws"
    sent = {f["original"] for f in doc["files"]}
    assert not sent & set(refused)
    assert str(shot.inside) in sent and str(shot.link_out) in sent
    # The table says the same in words.
    table = cli("deps", str(shot.blend), tmp_path=tmp_path)
    assert table.returncode == 1
    assert "REFUSED (2)" in table.stdout and "--allow-credential-files" in table.stdout
    assert f"{shot.link_out} -> {shot.outside}" in table.stdout
    assert "2 files from outside the project folder would be sent" in table.stdout
    allowed = json.loads(cli("deps", str(shot.blend), "--json", "--allow-credential-files",
                             tmp_path=tmp_path).stdout)
    assert allowed["refused"] == []
    assert {e["path"] for e in allowed["outside_project"]} == {
        str(shot.outside), str(shot.link_out), str(shot.ssh_key), str(shot.link_creds)}
    fault_row("deps of a .blend using ~/.ssh/id_rsa, a link to ~/.aws/credentials and two "
              "files outside the project", area="security",
              saw=" / ".join(table.stdout.split("REFUSED")[1].splitlines()[:2]),
              end_state="exit 1; --json lists both refused (with the store and who uses "
              "them) and both outside files (the link with its target); none refused is "
              "in the file list")


@pytest.mark.local_server_only
def test_submit_refuses_credential_files_before_anything_is_sent(
        shaman_server: Any, shot: Shot, tmp_path: Path,
        fault_row: Callable[..., Any]) -> None:
    out = cli("submit", str(shot.blend), "--server", shaman_server.url, "--json",
              tmp_path=tmp_path)
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["error_type"] == "CredentialFileRefused"
    assert "--allow-credential-files" in doc["error"]
    assert str(shot.blend) in doc["error"]  # who references it
    assert str(shot.ssh_key) in doc["error"] or str(shot.link_creds) in doc["error"]
    assert "Traceback" not in out.stderr
    state = disk_state(shaman_server.storage)
    assert state.stored == set() and state.checkouts == []
    assert "upload" not in shaman_server.counters.requests
    fault_row("submit of a .blend using a credential file", area="security",
              saw=doc["error"], end_state=f"exit 1; server: {state.describe()}; "
              "no upload request")


def test_submit_lists_outside_files_in_the_dry_run_and_the_result(
        shaman_server: Any, shot: Shot, tmp_path: Path,
        fault_row: Callable[..., Any]) -> None:
    every = {str(shot.outside), str(shot.link_out), str(shot.ssh_key), str(shot.link_creds)}
    checkouts_before = disk_state(shaman_server.storage).checkouts  # another server has some
    dry = cli("submit", str(shot.blend), "--server", shaman_server.url, "--json", "--dry-run",
              "--allow-credential-files", tmp_path=tmp_path)
    assert dry.returncode == 0, dry.stderr
    doc = json.loads(dry.stdout)
    assert {e["path"] for e in doc["outside_project"]} == every
    human = cli("submit", str(shot.blend), "--server", shaman_server.url, "--dry-run",
                "--allow-credential-files", tmp_path=tmp_path)
    assert "4 files from outside the project folder would be sent" in human.stdout
    assert f"{shot.link_creds} -> " in human.stdout
    assert disk_state(shaman_server.storage).checkouts == checkouts_before  # dry: none made
    real = cli("submit", str(shot.blend), "--server", shaman_server.url,
               "--allow-credential-files", tmp_path=tmp_path)
    assert real.returncode == 0, real.stderr
    assert "4 files from outside the project folder were sent" in real.stdout
    checkout = real.stdout.split("Checkout: ")[1].splitlines()[0]
    sent_key = (shaman_server.storage / "jobs" / checkout / "_outside_project"
                / str(shot.ssh_key).lstrip("/"))
    assert sent_key.read_bytes() == shot.ssh_key.read_bytes()
    fault_row("files from outside the project, credential files allowed", area="security",
              saw=next(line for line in real.stdout.splitlines() if "outside" in line),
              end_state="dry run and result name all 4 (links with targets, who uses "
              "each); with the flag the key is in the checkout")


def _drop_read_override() -> tuple[str, ...]:
    """As root, permission bits do not stop reading: run the command without the
    capabilities that bypass them, as an ordinary user would be."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root, the unreadable-file tests need setpriv (util-linux)"
    caps = "-dac_override,-dac_read_search"
    return (setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}")


def test_unreadable_and_system_files_are_missing_with_a_reason(
        shaman_server: Any, tmp_path: Path, fault_row: Callable[..., Any]) -> None:
    root = tmp_path / "project"
    (root / ".blender_project").mkdir(parents=True)
    (root / "tex").mkdir()
    (root / "tex" / "ok.png").write_bytes(b"fine")
    locked = root / "tex" / "locked.png"
    locked.write_bytes(b"nobody may read this")
    blend = make_blend(root / "shot.blend", ["//tex/ok.png", "//tex/locked.png",
                                              "/proc/self/environ", "/dev/zero"])
    locked.chmod(0)
    prefix = _drop_read_override()
    deps = cli("deps", str(blend), "--json", tmp_path=tmp_path, prefix=prefix)
    assert deps.returncode == 0, deps.stderr
    missing = _by_path(json.loads(deps.stdout)["missing"])
    assert "permission denied" in missing[str(locked)]["reason"]
    assert "/proc" in missing["/proc/self/environ"]["reason"]
    assert "device" in missing["/dev/zero"]["reason"]
    sub = cli("submit", str(blend), "--server", shaman_server.url, "--json",
              tmp_path=tmp_path, prefix=prefix)
    assert sub.returncode == 0, sub.stderr
    doc = json.loads(sub.stdout)
    assert _by_path(doc["missing"]).keys() == missing.keys()
    assert "Traceback" not in sub.stderr
    assert f"{locked} (on disk but not readable" in sub.stderr
    strict = cli("submit", str(blend), "--server", shaman_server.url, "--fail-on-missing",
                 tmp_path=tmp_path, prefix=prefix)
    assert strict.returncode == 3 and str(locked) in strict.stderr
    fault_row("an unreadable texture, /proc/self/environ and /dev/zero as dependencies",
              area="bad input",
              saw=next(ln for ln in sub.stderr.splitlines() if "locked" in ln),
              end_state="deps and submit: the same 3 missing entries with reasons, exit 0 "
              "(3 with --fail-on-missing); nothing read from /proc or /dev")


def test_same_size_change_with_the_mtime_put_back_is_sent(
        shaman_server: Any, tmp_path: Path, fault_row: Callable[..., Any]) -> None:
    """Issue 13, item 8: the checksum cache must notice the change (ctime, inode)."""
    root = tmp_path / "project"
    (root / ".blender_project").mkdir(parents=True)
    (root / "tex").mkdir()
    tex = root / "tex" / "wood.png"
    tex.write_bytes(b"version one")
    blend = make_blend(root / "shot.blend", ["//tex/wood.png"])
    args = ("submit", str(blend), "--server", shaman_server.url, "--json", "--cache-dir",
            str(tmp_path / "cache"))
    first = json.loads(cli(*args, tmp_path=tmp_path).stdout)
    st = tex.stat()
    tex.write_bytes(b"version two")  # the same size...
    os.utime(tex, ns=(st.st_atime_ns, st.st_mtime_ns))  # ...and the old mtime
    out = cli(*args, tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    second = json.loads(out.stdout)
    sent = shaman_server.storage / "jobs" / second["checkout_path"] / "tex" / "wood.png"
    assert sent.read_bytes() == b"version two"
    assert second["files_uploaded"] == 1 and first["checkout_path"] != second["checkout_path"]
    again = json.loads(cli(*args, tmp_path=tmp_path).stdout)
    assert again["files_uploaded"] == 0  # unchanged since: free again
    fault_row("a texture rewritten at the same size, its mtime put back", area="fault",
              saw=f"done: checkout {second['checkout_path']}, 1 file uploaded",
              end_state="the checkout holds the new bytes; a third, unchanged submission "
              "uploads nothing")
