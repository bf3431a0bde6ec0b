"""Helpers for tests on real .blend productions (the productions themselves are session
fixtures in ``tests/conftest.py``).

``materialise`` lays out a pack plan the way a Shaman server does: each file's bytes in
a content store named by SHA-256 and size, and the checkout as relative symlinks into it;
``tree_hashes`` proves nothing was written to a folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

__all__ = ["materialise", "sha256_file", "tree_hashes"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    """Hash of every regular file below ``root`` (to prove nothing was written)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p)] = sha256_file(p)
    return out


def materialise(plan, store: Path, checkout: Path) -> Path:
    """Build a checkout like the server: blobs by (sha, size), relative symlinks to them.

    Returns the path of the main .blend inside the checkout.
    """
    from shaman_addon.collect.paths import is_safe_checkout_path

    for f in plan.files:
        assert is_safe_checkout_path(f.checkout_path), f.checkout_path
        sha = sha256_file(f.source)
        blob = store / sha[:2] / sha[2:] / f"{f.size}.blob"
        if not blob.exists():
            blob.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f.source, blob)
        link = checkout / f.checkout_path
        link.parent.mkdir(parents=True, exist_ok=True)
        assert not link.exists() and not link.is_symlink(), f"duplicate {f.checkout_path}"
        link.symlink_to(os.path.relpath(blob, link.parent))
    return checkout / plan.blend_checkout_path
