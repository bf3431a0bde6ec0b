"""The last collection of a .blend, reused while nothing it was decided from has changed.

Collecting costs some 100 µs of Python a file (expanding, screening, placing), about
10 s for a 100,000-file shot; a resubmission of that shot, unchanged or with a few
textures repainted, must come to the same outcome. The outcome (which files, where each
lands, what is missing and why, what is outside the project, the warnings) depends on:

- each traced .blend's identity (size, times, inode): its stored paths;
- each folder whose listing was read (sequences, tiles, caches): its entries' names;
- where each folder holding a file or a missing path really is (symlinks on the way);
- each file being there, of the same kind (a regular file, or a link to the same place),
  with the same permission bits and owner; its bytes and size may change (they are
  hashed afterwards, and are not part of the outcome);
- each missing path being missing the same way;
- the folders named like a Blender version that were looked at as an installation.

``save`` records them with the plan; ``reuse`` looks at each again (one ``lstat`` a
file, about 3 µs) and gives back the plan, or None as soon as one differs, and the
collector then collects afresh. Kept in the cache folder, one file per .blend and
settings; a record that cannot be read is not used.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import posixpath
import stat
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .expand import Expander, FolderState, folder_state, is_install_folder
from .plan import NOT_ON_DISK, MissingFile, OutsideFile, PackPlan, PlanFile

log = logging.getLogger(__name__)

FORMAT = 1
MAX_BYTES = 256 << 20  # larger than a 1,000,000-file record (~140 MB): not read
CANCEL_EVERY = 4096  # files looked at between two looks at the cancel flag
CHUNK_ROWS = 4096  # file rows written at a time
KEEP = 32  # records kept in the cache folder, the last written or used
BLEND = "blend"  # a file's state in the record: a traced .blend, whose identity is kept
_CODE = Path(__file__).resolve().parent


@dataclass
class Watch:
    """What a collection was decided from, besides its plan (see the module docstring)."""

    blends: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    listed: dict[str, FolderState] = field(default_factory=dict)
    versions: dict[str, bool] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def blend_read(self, path: str, st: os.stat_result) -> None:
        self.blends[path] = blend_ident(st)

    def seen(self, expander: Expander) -> Watch:
        """This, with what ``expander`` listed and looked at as an installation."""
        self.listed = expander.listed
        self.versions = expander.version_folders()
        return self


def blend_ident(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def record_path(cache_dir: Path, settings: Iterable[object]) -> Path:
    """Where the record of one .blend collected with these settings is kept: the code
    of this package is part of the key, so a changed collector never reuses an old
    outcome."""
    key = json.dumps([FORMAT, _code_digest(), os.geteuid() if hasattr(os, "geteuid") else 0,
                      *map(str, settings)])
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
    return cache_dir / "collections" / f"{digest}.json"


@functools.cache
def _code_digest() -> str:
    h = hashlib.sha256()
    for src in sorted(_CODE.glob("*.py")):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    try:
        import blender_asset_tracer  # imported late: it is large
        h.update(str(getattr(blender_asset_tracer, "__version__", "")).encode())
    except ImportError:
        pass
    return h.hexdigest()


# -- saving

def save(record: Path, plan: PackPlan, streamed: Iterable[str], watch: Watch) -> None:
    """Write the record of a finished collection (replacing the last); a record that
    cannot be written is skipped with a log line (the next collection is a full one).
    ``streamed`` are the paths of the files handed out, in that order. The file rows
    are written a chunk at a time: a 100,000-file record is ~15 MB of text, which a
    cold submission must not hold at its peak."""
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                _write(out, plan, {path: i for i, path in enumerate(streamed)}, watch)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.replace(tmp, record)
        _prune(record.parent)
    except (OSError, ValueError) as exc:
        log.warning("could not keep the collection record %s: %s", record, exc)


def _prune(folder: Path) -> None:
    """Keep the ``KEEP`` records last written or used: one is kept per .blend and
    settings (a temporary copy of unsaved work has a new name each time), and a large
    shot's is megabytes."""
    records = []
    for entry in os.scandir(folder):
        if entry.name.endswith(".json"):
            with contextlib.suppress(OSError):
                records.append((entry.stat().st_mtime_ns, entry.path))
    records.sort(reverse=True)
    for _, path in records[KEEP:]:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _write(out: TextIO, plan: PackPlan, order: Mapping[str, int], watch: Watch) -> None:
    inside = str(plan.project_root).rstrip("/") + "/"
    others: list[list[Any]] = []
    chunk: list[str] = []
    sep = ""  # between chunks
    out.write(_json({"format": FORMAT, "main": [str(plan.main_blend), str(plan.project_root),
                                                plan.blend_checkout_path],
                     "count": len(plan.files)})[:-1] + ',"plain":[')
    for pos, f in enumerate(plan.files):
        row = _file_row(f, watch)
        if isinstance(row, list):
            others.append([pos, order.get(f.original_path, -1), *row])
            continue
        cp = f.checkout_path
        same = f.original_path.startswith(inside) and f.original_path[len(inside):] == cp
        chunk.append(_json([pos, order.get(f.original_path, -1), f.original_path,
                            None if same else cp, *row]))
        if len(chunk) >= CHUNK_ROWS:
            out.write(sep + ",".join(chunk))
            chunk, sep = [], ","
    if chunk:
        out.write(sep + ",".join(chunk))
    rest = {
        "others": others,
        "missing": [[m.path, list(m.referenced_by), m.reason, _missing_state(m)]
                    for m in plan.missing],
        "outside": [o.to_json() for o in plan.outside_project],
        "refused": [o.to_json() for o in plan.refused],
        "warnings": plan.warnings,
        "blends": watch.blends,
        "listed": watch.listed,
        "versions": watch.versions,
        "skipped": [[p, _kind(p)] for p in watch.skipped],
        "folders": _real_folders(plan, watch),
    }
    out.write("]," + _json(rest)[1:])


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _file_row(f: PlanFile, watch: Watch) -> tuple[int, int, int] | list[Any]:
    """A plain file's (mode, owner, group); else the whole row of a rewritten copy, a
    traced .blend, a symlink, or a file that could not be looked at."""
    state: list[Any] | str | None = None
    if f.rewritten:
        try:
            st = os.lstat(f.source_path)
            state = [st.st_size, st.st_ino, st.st_mtime_ns]
        except OSError:
            state = None  # gone already: the record will not be reused
    elif f.original_path in watch.blends:
        state = BLEND  # checked whole, with the .blend files
    elif f.source_path == f.original_path:
        state = _file_state(f.original_path)
        if state is not None and state[3] is None:
            return state[0], state[1], state[2]
    return [f.original_path, f.source_path, f.checkout_path, f.size, f.rewritten, state]


def _file_state(path: str) -> list[Any] | None:
    try:
        lst = os.lstat(path)
        if not stat.S_ISLNK(lst.st_mode):
            return [lst.st_mode, lst.st_uid, lst.st_gid, None, 0]
        target = os.stat(path)
        return [lst.st_mode, target.st_uid, target.st_gid, os.path.realpath(path),
                target.st_mode]
    except OSError:
        return None


def _missing_state(m: MissingFile) -> list[int] | None:
    if m.reason == NOT_ON_DISK:
        return None  # nothing there: so it must stay
    return _kind(m.path)


def _kind(path: str) -> list[int] | None:
    try:
        st = os.lstat(path)
    except (OSError, ValueError):
        return None
    return [st.st_mode, st.st_uid, st.st_gid]


def _real_folders(plan: PackPlan, watch: Watch) -> dict[str, str]:
    folders = {str(plan.project_root)}
    for f in plan.files:
        folders.add(_folder(f.original_path))
    folders.update(_folder(m.path) for m in plan.missing)
    folders.update(_folder(p) for p in watch.skipped)
    return {d: os.path.realpath(d) for d in sorted(folders)}


def _folder(path: str) -> str:
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else posixpath.dirname(path)


# -- reusing

class _Changed(Exception):
    """Something the record was decided from is not the same (the text says what)."""


def reuse(record: Path, plan: PackPlan, cancelled: Callable[[], bool] = lambda: False
          ) -> list[tuple[PlanFile, os.stat_result]] | None:
    """Fill ``plan`` (its main .blend, root and checkout path set) from the record, if
    everything it was decided from is as it was: the files to hand out as collecting
    would have (in the same order), each with its ``stat`` of this run. None (``plan``
    untouched) otherwise."""
    try:
        if record.stat().st_size > MAX_BYTES:
            return None
        doc = json.loads(record.read_bytes())
        if doc["format"] != FORMAT or doc["main"] != [
                str(plan.main_blend), str(plan.project_root), plan.blend_checkout_path]:
            return None
        _check_around(doc)
        streamed = _fill(plan, doc, cancelled)
        with contextlib.suppress(OSError):
            os.utime(record)  # used: the last to be pruned
    except FileNotFoundError:
        return None
    except _Changed as exc:
        log.info("collecting afresh: %s", exc)
        return None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        log.info("collection record %s not used: %s", record, exc)
        return None
    return streamed


def _check_around(doc: dict[str, Any]) -> None:
    """Everything but the files: the .blend files, folders, missing paths."""
    for path, ident in doc["blends"].items():
        try:
            st = os.stat(path)
        except OSError as exc:
            raise _Changed(f"{path} is gone") from exc
        if list(blend_ident(st)) != ident:
            raise _Changed(f"{path} changed")
    for folder, state in doc["listed"].items():
        if folder_state(folder) != state:
            raise _Changed(f"the folder {folder} changed")
    for folder, was in doc["versions"].items():
        if is_install_folder(folder) != was:
            raise _Changed(f"{folder} changed")
    for folder, real in doc["folders"].items():
        if os.path.realpath(folder) != real:
            raise _Changed(f"{folder} now leads elsewhere")
    for path, *_, state in doc["missing"]:
        if _kind(path) != state:
            raise _Changed(f"{path} changed")
    for path, state in doc["skipped"]:
        if _kind(path) != state:
            raise _Changed(f"{path} changed")


def _fill(plan: PackPlan, doc: dict[str, Any],
          cancelled: Callable[[], bool]) -> list[tuple[PlanFile, os.stat_result]]:
    """The plan's files, each looked at once; the streamed ones in their first order."""
    count = int(doc["count"])
    files: list[Any] = [None] * count
    streamed: list[Any] = [None] * count
    inside = len(str(plan.project_root).rstrip("/")) + 1
    lstat = os.lstat
    for i, (pos, order, path, cp, mode, uid, gid) in enumerate(doc["plain"]):
        if i % CANCEL_EVERY == 0 and cancelled():
            raise _Changed("cancelled")
        try:
            st = lstat(path)
        except OSError as exc:
            raise _Changed(f"{path} is gone") from exc
        if st.st_mode != mode or st.st_uid != uid or st.st_gid != gid:
            raise _Changed(f"{path} changed kind, permissions or owner")
        files[pos] = entry = PlanFile(path, cp or path[inside:], st.st_size, path)
        if order >= 0:
            streamed[order] = (entry, st)
    for pos, order, *row in doc["others"]:
        files[pos], st = _look(*row)
        if order >= 0:
            streamed[order] = (files[pos], st)
    if None in files:
        raise ValueError("the record's files do not add up")
    missing = [MissingFile(p, tuple(refs), reason) for p, refs, reason, _ in doc["missing"]]
    outside = [_outside(o) for o in doc["outside"]]
    refused = [_outside(o) for o in doc["refused"]]
    warnings = [str(w) for w in doc["warnings"]]
    plan.files, plan.missing, plan.warnings = files, missing, warnings
    plan.outside_project, plan.refused = outside, refused
    return [item for item in streamed if item is not None]


def _look(original: str, source: str, cp: str, size: int, rewritten: bool,
          state: list[Any] | str | None) -> tuple[PlanFile, os.stat_result]:
    """One file of the record other than a plain one, looked at now: its entry and
    ``stat``."""
    if rewritten:
        st = os.lstat(source)
        if state is None or [st.st_size, st.st_ino, st.st_mtime_ns] != state:
            raise _Changed(f"the rewritten copy of {original} changed")
        return PlanFile(source, cp, size, original, True), st
    try:
        st = os.lstat(original)
    except OSError as exc:
        raise _Changed(f"{original} is gone") from exc
    if isinstance(state, str):  # BLEND: checked whole, with the .blend files
        return PlanFile(source, cp, size, original), st
    if state is None:
        raise _Changed(f"{original} could not be looked at when it was collected")
    mode, uid, gid, real, target_mode = state
    if st.st_mode != mode:
        raise _Changed(f"{original} changed kind or permissions")
    if real is not None:  # a symlink: the same place, the same kind of file there
        target = os.stat(original)
        if (os.path.realpath(original) != real or target.st_mode != target_mode
                or (target.st_uid, target.st_gid) != (uid, gid)):
            raise _Changed(f"{original} now leads elsewhere")
        st = target
    elif (st.st_uid, st.st_gid) != (uid, gid):
        raise _Changed(f"the owner of {original} changed")
    return PlanFile(source, cp, st.st_size, original), st


def _outside(doc: dict[str, Any]) -> OutsideFile:
    return OutsideFile(str(doc["path"]), str(doc["target"]),
                       tuple(str(r) for r in doc["referenced_by"]),
                       None if doc["credential_store"] is None else str(doc["credential_store"]))
