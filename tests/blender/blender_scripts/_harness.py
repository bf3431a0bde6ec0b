"""Shared helpers for the scripts that run INSIDE ``bpy`` (one process per scenario).

``bpy`` can be imported once per process and keeps global state, so every scenario runs
in a fresh interpreter started by the tests (``SHAMAN_BPY_PYTHON``, default
``.venv/bin/python``). The environment gives a throw-away Blender user folder
(``BLENDER_USER_RESOURCES``). A script ends by printing one ``RESULT {json}`` line.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
EXT_ID = "shaman_submitter"
MODULE = f"bl_ext.user_default.{EXT_ID}"


def emit(data: dict[str, Any]) -> None:
    sys.stdout.write("RESULT " + json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def link_extension() -> str:
    """Make the repository the ``user_default`` extension (a symlink) and enable it."""
    import addon_utils
    import bpy

    user = Path(os.environ["BLENDER_USER_RESOURCES"])
    repo_dir = user / "extensions" / "user_default"
    repo_dir.mkdir(parents=True, exist_ok=True)
    link = repo_dir / EXT_ID
    if not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    if MODULE not in bpy.context.preferences.addons:
        mod = addon_utils.enable(MODULE, default_set=True, handle_error=_raise)
        assert mod is not None, "the extension did not enable"
    assert hasattr(bpy.ops.shaman, "submit")
    return MODULE


def _raise(exc: BaseException) -> None:
    raise exc


def prefs(module: str = MODULE) -> Any:
    import bpy

    return bpy.context.preferences.addons[module].preferences


def state() -> Any:
    import bpy

    return bpy.context.window_manager.shaman


def open_blend(path: str | Path) -> None:
    import bpy

    bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)


def png_bytes(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid PNG of one colour (written by hand: no image library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return (
            len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
        )

    row = b"\x00" + bytes(rgb) * width
    raw = row * height
    header = (
        width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    )
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def add_image(path: Path, rgb: tuple[int, int, int] = (200, 40, 40), size: int = 8) -> Any:
    """Write a PNG at ``path`` and load it as an image kept in the file (fake user)."""
    import bpy

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(size, size, rgb))
    image = bpy.data.images.load(str(path))
    image.filepath = bpy.path.relpath(str(path)) if bpy.data.filepath else str(path)
    image.use_fake_user = True
    return image


def shaman_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("shaman-")]


def our_handlers() -> list[str]:
    import bpy

    names = []
    for attr in ("load_pre", "load_post", "save_pre", "save_post"):
        for fn in getattr(bpy.app.handlers, attr):
            if "shaman" in getattr(fn, "__module__", ""):
                names.append(f"{attr}:{fn.__module__}.{fn.__name__}")
    return names
