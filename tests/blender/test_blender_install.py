"""The extension as an artist gets it: the zip built by Blender's own tool, installed
into a throw-away Blender user folder, used, disabled and uninstalled.

The install runs in a Python where BAT cannot be imported except from the wheel the zip
brings (see ``blender_scripts/install_extension.py``), against the Shaman server
running as its own process.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from blender_scripts.runner import BPY_PYTHON, REPO, make_production, run_bpy


def blender_ext_tool() -> Path:
    out = subprocess.run(
        [BPY_PYTHON, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    found = sorted(Path(out).glob("bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    assert found, f"blender_ext.py not found under {out}/bpy"
    return found[0]


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-extension.sh"), str(out)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "SHAMAN_BPY_PYTHON": BPY_PYTHON},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    zips = list(out.glob("shaman_submitter-*.zip"))
    assert len(zips) == 1, zips
    return zips[0]


def test_blender_validates_the_repository_manifest() -> None:
    proc = subprocess.run([BPY_PYTHON, str(blender_ext_tool()), "validate", str(REPO)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout


def test_the_zip_holds_the_extension_and_the_bat_wheel_only(built_zip: Path) -> None:
    names = zipfile.ZipFile(built_zip).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "wheels/blender_asset_tracer-1.23-py3-none-any.whl" in names
    assert "shaman_addon/blender/operators.py" in names
    assert "shaman_addon/submit/__init__.py" in names
    assert not [n for n in names if n.startswith(("tests/", "scripts/", ".git", "benchmarks/"))]
    assert not [n for n in names if n.endswith(".pyc")]
    # the wheel is the unmodified one from PyPI
    wheel = zipfile.ZipFile(built_zip).read("wheels/blender_asset_tracer-1.23-py3-none-any.whl")
    want = (REPO / "wheels" / "SHA256SUMS").read_text().split()[0]
    assert hashlib.sha256(wheel).hexdigest() == want


def test_install_submit_disable_uninstall_without_bat_in_the_environment(
    built_zip: Path, server_process: Any, tmp_path: Path
) -> None:
    prod = make_production(tmp_path / "prod", tmp_path / "gen-user")
    server = server_process()
    user = tmp_path / "blender-user"
    run = run_bpy("install_extension.py", str(built_zip), prod["main"], server.url,
                  user_dir=user)
    assert run.returncode == 0 and run.result is not None, run.explain()
    r = run.result
    assert r["bat_before"].startswith("no:")  # the venv's BAT is hidden
    assert r["install"] == ["FINISHED"] and r["enabled"]
    assert r["submit"] == ["FINISHED"], r["submit_error"]
    assert r["guard_refusals"] >= 1
    assert r["bat_used_from"].startswith(str(user / "extensions" / ".local"))
    assert len(r["handlers_enabled"]) == 2

    checkout = server.checkout_dir(r["checkout_path"])
    main = checkout / "shots" / "main.blend"
    assert main.is_file() and (checkout / "textures" / "wall.png").is_file()
    assert hashlib.sha256(main.read_bytes()).digest() == hashlib.sha256(
        Path(prod["main"]).read_bytes()).digest()
    assert r["worker_path"] == f"{{jobs}}/{r['checkout_path']}/shots/main.blend"

    assert not r["enabled_after_disable"]
    assert r["handlers_after_disable"] == [] and r["threads_after_disable"] == []
    assert not r["wm_state_after_disable"] and not r["op_after_disable"]
    assert r["uninstall"] == ["FINISHED"] and not r["dir_after_uninstall"]
    assert r["wheel_after_uninstall"] == []
    assert r["threads_end"] == []


NEIGHBOUR_MANIFEST = """schema_version = "1.0.0"
id = "bat_neighbour"
version = "1.0.0"
name = "BAT Neighbour"
tagline = "Another extension that bundles the same BAT wheel"
maintainer = "Shaman Submitter tests"
type = "add-on"
blender_version_min = "4.2.0"
license = ["SPDX:GPL-3.0-or-later"]
wheels = ["./wheels/blender_asset_tracer-1.23-py3-none-any.whl"]
"""

NEIGHBOUR_INIT = """def register():
    import blender_asset_tracer  # noqa: F401  (uses the shared wheel)


def unregister():
    pass
"""


def test_it_lives_beside_another_extension_bundling_bat(
    built_zip: Path, server_process: Any, tmp_path: Path
) -> None:
    src = tmp_path / "neighbour"
    (src / "wheels").mkdir(parents=True)
    (src / "blender_manifest.toml").write_text(NEIGHBOUR_MANIFEST)
    (src / "__init__.py").write_text(NEIGHBOUR_INIT)
    wheel = REPO / "wheels" / "blender_asset_tracer-1.23-py3-none-any.whl"
    (src / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    out = tmp_path / "neighbour-dist"
    out.mkdir()
    proc = subprocess.run([BPY_PYTHON, str(blender_ext_tool()), "build", "--source-dir", str(src),
                           "--output-dir", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    neighbour_zip = next(out.glob("bat_neighbour-*.zip"))

    prod = make_production(tmp_path / "prod", tmp_path / "gen-user")
    server = server_process()
    run = run_bpy("install_extension.py", str(built_zip), prod["main"], server.url,
                  str(neighbour_zip), user_dir=tmp_path / "blender-user")
    assert run.returncode == 0 and run.result is not None, run.explain()
    r = run.result
    assert r["neighbour_install"] == ["FINISHED"] and r["install"] == ["FINISHED"]
    assert r["submit"] == ["FINISHED"], r["submit_error"]
    assert r["neighbour_uninstall"] == ["FINISHED"]
    assert r["bat_dirs_after_neighbour"], "the shared BAT wheel went away with the neighbour"
    assert r["submit_after_neighbour"] == ["FINISHED"], r["submit_after_neighbour_error"]
    assert r["uninstall"] == ["FINISHED"] and r["wheel_after_uninstall"] == []
