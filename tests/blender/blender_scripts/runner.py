"""Test-side helpers (plain Python, no bpy): run a script in a fresh bpy process.

``SHAMAN_BPY_PYTHON`` picks the interpreter that has ``bpy`` (default: the repository's
``.venv/bin/python``; ``scripts/test-blender42.sh`` points it at a Blender 4.2 venv).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
REFERENCE_BPY_PYTHON = str(REPO / ".venv" / "bin" / "python")
BPY_PYTHON = os.environ.get("SHAMAN_BPY_PYTHON", REFERENCE_BPY_PYTHON)


@dataclass
class BpyRun:
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, Any] | None

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-4000:]}\n--- stderr\n" + (
            self.stderr[-4000:]
        )


def bpy_env(user_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment: a throw-away Blender user folder, no studio server URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLENDER_", "SHAMAN_"))}
    env["BLENDER_USER_RESOURCES"] = str(user_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_bpy(
    script: str | Path,
    *args: str,
    user_dir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 300,
    python: str | None = None,
) -> BpyRun:
    user_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [python or BPY_PYTHON, str(HERE / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=bpy_env(user_dir, env),
        cwd=str(user_dir),
    )
    result = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            break
    return BpyRun(proc.returncode, proc.stdout, proc.stderr, result)


def scenario(
    name: str,
    user_dir: Path,
    env: dict[str, str] | None = None,
    python: str | None = None,
    **args: Any,
) -> Any:
    """Run one scenario of ``scenario.py``; its RESULT, or an AssertionError explaining."""
    run = run_bpy(
        "scenario.py", name, json.dumps(args, default=str), user_dir=user_dir, env=env,
        python=python,
    )
    assert run.returncode == 0 and run.result is not None, run.explain()
    return run.result


def make_production(out: Path, user_dir: Path, *extra: str) -> dict[str, Any]:
    """A tiny production built by the bpy under test (see ``make_production.py``)."""
    run = run_bpy("make_production.py", str(out), *extra, user_dir=user_dir)
    assert run.returncode == 0 and run.result is not None, run.explain()
    return run.result
