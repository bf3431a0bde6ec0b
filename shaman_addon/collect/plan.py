"""The pack plan: what the collector found and where each file lands in the checkout.

A plain data object so the pipeline, the command line and the Blender layer all read the
same thing, and so it can be printed as JSON (``deps --json``) or cached.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

NOT_ON_DISK = "not on disk"


@dataclass(slots=True)
class PlanFile:
    """One file to send.

    ``source_path`` is what is read and hashed: the artist's file, or for a .blend whose
    paths were rewritten, the temporary rewritten copy. ``original_path`` is always the
    artist's file. ``checkout_path`` is relative, ``/``-separated, with no ``..`` part
    (see ``paths``).

    Paths are held as text (with ``source`` and ``original`` as ``Path`` views made on
    demand): a submission holds one of these per file, 100,000 for a large shot, and a
    ``pathlib.Path`` costs some 600 bytes more than its text.

    Not a frozen dataclass (nothing changes one once made): making a frozen one costs
    three times as much, and a 100,000-file submission makes 100,000.
    """

    source_path: str
    checkout_path: str
    size: int
    original_path: str
    rewritten: bool = False

    @classmethod
    def of(cls, source: str | os.PathLike[str], checkout_path: str, size: int,
           original: str | os.PathLike[str] | None = None, *,
           rewritten: bool = False) -> PlanFile:
        """A plan entry; ``original`` defaults to ``source`` (one text for both)."""
        src = os.fspath(source)
        return cls(src, checkout_path, size, src if original is None else os.fspath(original),
                   rewritten)

    @property
    def source(self) -> Path:
        return Path(self.source_path)

    @property
    def original(self) -> Path:
        return Path(self.original_path)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source_path,
            "original": self.original_path,
            "checkout_path": self.checkout_path,
            "size": self.size,
            "rewritten": self.rewritten,
        }


@dataclass(frozen=True, slots=True)
class MissingFile:
    """A dependency that is referenced but not on disk, with who references it."""

    path: str
    referenced_by: tuple[str, ...]
    reason: str = NOT_ON_DISK
    """Why it cannot be sent: not on disk, not readable, a system file..."""

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "referenced_by": list(self.referenced_by),
                "reason": self.reason}


@dataclass(frozen=True)
class OutsideFile:
    """A file from outside the project root (a symlink counts by its target), with who
    references it; ``credential_store`` names the credential store it lies in, if any
    (such a file is sent only when the person allowed it)."""

    path: str
    target: str
    referenced_by: tuple[str, ...]
    credential_store: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "target": self.target,
                "referenced_by": list(self.referenced_by),
                "credential_store": self.credential_store}


@dataclass
class PackPlan:
    """Everything the upload pipeline needs, and what ``deps`` prints."""

    main_blend: Path
    project_root: Path
    blend_checkout_path: str
    files: list[PlanFile] = field(default_factory=list)
    missing: list[MissingFile] = field(default_factory=list)
    outside_project: list[OutsideFile] = field(default_factory=list)
    """Every file sent from outside the project root, with what references it."""
    refused: list[OutsideFile] = field(default_factory=list)
    """Credential files found and not sent (the person did not allow them)."""
    warnings: list[str] = field(default_factory=list)
    temp_files: list[Path] = field(default_factory=list)
    temp_dir: Path | None = None

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def cleanup(self) -> None:
        """Remove the temporary rewritten copies; safe to call more than once."""
        for path in self.temp_files:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove temporary file %s: %s", path, exc)
        if self.temp_dir is not None and self.temp_dir.exists():
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "main_blend": str(self.main_blend),
            "project_root": str(self.project_root),
            "blend_checkout_path": self.blend_checkout_path,
            "file_count": len(self.files),
            "total_bytes": self.total_bytes,
            "files": [f.to_json() for f in self.files],
            "missing": [m.to_json() for m in self.missing],
            "outside_project": [o.to_json() for o in self.outside_project],
            "refused": [o.to_json() for o in self.refused],
            "warnings": list(self.warnings),
        }
