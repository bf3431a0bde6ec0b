"""From a .blend to a pack plan: every file it needs, where each lands, rewritten copies.

Steps: trace the main .blend and, recursively, every library it links (``trace_blend``);
expand each stored path to files on disk (``collect_expand``); give every file its
checkout path (``paths.to_checkout_path``, the only place paths are made); rewrite the
.blend files whose stored paths no longer lead to the right place in the checkout
(``rewrite``). The artist's files are only read, never written.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import BlendFileError, Cancelled, CheckoutPathClash, ConfigError, TemporaryCopyFailed
from ..gc_pacing import fewer_collections
from . import paths, snapshot, trace_cache
from .expand import Expander, canon, resolve
from .plan import NOT_ON_DISK, MissingFile, PackPlan, PlanFile
from .rewrite import Patch, patches_for, write_rewritten
from .screening import Screen
from .trace import CACHE_GLOB, LIBRARY, BlendTrace

log = logging.getLogger(__name__)

PROJECT_MARKERS = (".blender_project", ".git", ".svn")


def find_project_root(blend: Path) -> Path:
    """The nearest folder above ``blend`` holding a project marker, else its own folder."""
    start = Path(os.path.abspath(blend)).parent
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return start


def placement(blend: Path, *, project_root: Path | None,
              as_name: str | None) -> tuple[Path, Path, str]:
    """Where the main .blend lands, before anything is read: the path it is traced as
    (``as_name`` applied), the project root, and its checkout path. ``collect`` places it
    so; a render job is checked with this path before collecting starts."""
    blend = Path(os.path.abspath(blend))
    if as_name:
        named = Path(as_name)
        virtual = Path(os.path.abspath(named if named.is_absolute() else blend.parent / named))
    else:
        virtual = blend
    if project_root is not None:
        root = Path(os.path.abspath(project_root))
        if not root.is_dir():
            raise ConfigError(f"the project root {root} (--project-root) is not a folder")
    else:
        root = find_project_root(virtual)
    return virtual, root, paths.to_checkout_path(canon(virtual), canon(root))


def collect(
    blend: Path,
    *,
    project_root: Path | None = None,
    as_name: str | None = None,
    temp_dir: Path | None = None,
    cache_dir: Path | None = None,
    cancel: threading.Event | None = None,
    on_progress: Callable[[str], None] | None = None,
    on_file: Callable[[PlanFile, os.stat_result], None] | None = None,
    allow_credentials: bool = False,
    list_refused: bool = False,
) -> PackPlan:
    """Make the pack plan for ``blend``; see the module docstring.

    A dependency in a credential store (``sensitive.CREDENTIAL_STORES``) raises
    ``CredentialFileRefused`` as soon as it is found, before it is handed to anyone,
    unless ``allow_credentials``; with ``list_refused`` (``deps``) it is left out and
    listed in ``plan.refused`` instead. Files from outside the project root (symlink
    targets resolved) are listed in ``plan.outside_project`` with what references them.

    ``as_name`` traces and places the main file as if it were called that (a bare name:
    in the same folder; an absolute path: at that location), so a temporary copy of an
    unsaved scene finds ``//blendcache_<name>/`` and lands under its real name.

    ``on_file`` is called (on this thread) with each dependency and its ``stat`` (taken
    once: a 100,000-file shot must not be looked at file by file twice) as soon as its
    entry is final, while the libraries are still being read, so a caller can start hashing and
    sending early; the same ``PlanFile`` objects are in the returned plan. The .blend files
    (they may be rewritten) come only in the plan.
    """
    collector = _Collector(
        Path(os.path.abspath(blend)),
        project_root=project_root,
        as_name=as_name,
        temp_dir=temp_dir,
        cache_dir=cache_dir,
        cancel=cancel,
        on_progress=on_progress,
        on_file=on_file,
        allow_credentials=allow_credentials,
        list_refused=list_refused,
    )
    with fewer_collections():  # a record or two per file: see gc_pacing
        return collector.run()


@dataclass(frozen=True)
class _Traced:
    """What is kept of one traced .blend once its files are expanded."""

    compression: str
    warnings: list[str]
    patches: list[Patch]


class _Collector:
    def __init__(
        self,
        blend: Path,
        *,
        project_root: Path | None,
        as_name: str | None,
        temp_dir: Path | None,
        cache_dir: Path | None,
        cancel: threading.Event | None,
        on_progress: Callable[[str], None] | None,
        on_file: Callable[[PlanFile, os.stat_result], None] | None = None,
        allow_credentials: bool = False,
        list_refused: bool = False,
    ) -> None:
        if not blend.is_file():
            raise BlendFileError(f"{blend} does not exist or is not a file", path=str(blend))
        self.blend = blend
        self.virtual, self.root, self.main_cp = placement(blend, project_root=project_root,
                                                          as_name=as_name)
        self.temp_base = temp_dir
        self.cache_dir = cache_dir
        self.cancel = cancel
        self.progress = on_progress or (lambda _msg: None)
        self.blend_key = canon(self.blend)
        self.root_key = canon(self.root)
        self.expander = Expander()
        self._placed: dict[str, str] = {}
        self.on_file = on_file
        self._streamed: dict[str, PlanFile] = {}  # abs path -> entry handed to on_file
        self._queued: set[str] = set()  # .blend files traced or waiting to be
        self.screen = Screen(self.root_key, allow_credentials=allow_credentials,
                             list_refused=list_refused)
        self.watch = snapshot.Watch()
        self.record = None if cache_dir is None else snapshot.record_path(
            cache_dir, (self.blend_key, self.virtual, self.root_key, allow_credentials,
                        list_refused))

    # -- placement
    def place(self, abs_path: str) -> str:
        """Checkout path of a file or folder (the project root itself is ``"."``)."""
        try:
            return self._placed[abs_path]
        except KeyError:
            pass
        if abs_path == self.blend_key:
            cp = self.main_cp
        elif abs_path == self.root_key:
            cp = "."
        else:
            cp = paths.to_checkout_path(abs_path, self.root_key)
        self._placed[abs_path] = cp
        return cp

    def check_cancel(self, plan: PackPlan | None = None) -> None:
        if self.cancel is not None and self.cancel.is_set():
            if plan is not None:
                plan.cleanup()
            raise Cancelled(f"collecting the dependencies of {self.blend} was cancelled")

    def trace(self, path: Path) -> BlendTrace:
        st = path.stat()
        self.watch.blend_read(canon(path), st)
        return trace_cache.traced(path, st, self.cache_dir)

    def run(self) -> PackPlan:
        plan = PackPlan(
            main_blend=self.blend, project_root=self.root, blend_checkout_path=self.main_cp
        )
        if self._reuse(plan):
            return plan
        try:
            self._run(plan)
        except BaseException:
            plan.cleanup()
            raise
        if self.record is not None and not plan.temp_files:
            snapshot.save(self.record, plan, self._streamed, self.watch.seen(self.expander))
        return plan

    def _reuse(self, plan: PackPlan) -> bool:
        """The last collection's outcome, handed out as collecting would, when nothing
        it was decided from has changed (``snapshot``)."""
        if self.record is None:
            return False
        self.progress("looking for changes since the last collection")
        streamed = snapshot.reuse(self.record, plan, lambda: self.cancel is not None
                                  and self.cancel.is_set())
        self.check_cancel()
        if streamed is None:
            return False
        for i, (entry, st) in enumerate(streamed):
            if i % snapshot.CANCEL_EVERY == 0:
                self.check_cancel()
            if self.on_file is not None:
                self.on_file(entry, st)
        self.progress(f"{len(plan.files)} files, {len(plan.missing)} missing, as last collected")
        return True

    def _run(self, plan: PackPlan) -> None:
        missing: dict[str, list[str]] = {}  # abs path -> referrers
        found: dict[str, str] = {self.blend_key: self.main_cp}
        skipped: set[str] = set()
        traces = self._trace_all(found, skipped, missing)
        if skipped:
            log.info("not sending %d file(s) inside Blender's installation", len(skipped))
        self.watch.skipped = sorted(skipped)
        self._check_unique(found)
        rewritten = self._rewrite_all(plan, traces)
        self._fill(plan, traces, found, rewritten, missing)

    def _trace_all(
        self, found: dict[str, str], skipped: set[str], missing: dict[str, list[str]]
    ) -> dict[Path, _Traced]:
        """The main file and its libraries, breadth first (cycles end at the seen set); the
        files each one needs are expanded as soon as it is read, so they can be streamed,
        and its patches computed then: only they are kept, not the file's every path."""
        traces: dict[Path, _Traced] = {}
        order = [self.blend]
        queued = self._queued
        queued.add(self.blend_key)
        while order:
            self.check_cancel()
            current = order.pop(0)
            if current != self.blend and canon(current) not in found:
                continue  # refused, unreadable or a system file: listed, never read
            self.progress(f"reading {current.name}")
            trace = self.trace(current)
            for ref in trace.refs:
                if ref.kind != LIBRARY:
                    continue
                lib = resolve(current.parent, ref.path)
                if lib in queued:
                    continue
                if os.path.isfile(lib) and not self.expander.in_blender_install(lib):
                    queued.add(lib)
                    order.append(Path(lib))
            self._expand(current, trace, found, skipped, missing)
            traces[current] = _Traced(trace.compression, trace.warnings, patches_for(
                current, trace, found[canon(current)], blend_dir=str(current.parent),
                place=self.place, skip=self.expander.in_blender_install))
        return traces

    def _stream(self, abs_path: str, cp: str, st: os.stat_result | None) -> None:
        """Hand a found file to ``on_file`` unless it may still change: .blend files (they
        may need a rewritten copy) wait for the plan."""
        if (
            self.on_file is None
            or abs_path in self._queued
            or abs_path.lower().endswith(".blend")
        ):
            return
        if st is None:
            try:
                st = os.stat(abs_path)
            except OSError:
                return  # _fill reports it as vanished
        entry = PlanFile(abs_path, cp, st.st_size, abs_path)
        self._streamed[abs_path] = entry
        self.on_file(entry, st)

    def _expand(
        self,
        blend_path: Path,
        trace: BlendTrace,
        found: dict[str, str],
        skipped: set[str],
        missing: dict[str, list[str]],
    ) -> None:
        """Every file one .blend needs -> its checkout path (the .blend files included)."""
        if blend_path != self.blend:
            found[canon(blend_path)] = self.place(canon(blend_path))
        parent = str(blend_path.parent)
        for ref in trace.refs:
            blend_dir = parent
            ref_path = ref.path
            if ref.kind == CACHE_GLOB and blend_path == self.blend:
                # //blendcache_<name>/ follows the name the file is submitted under.
                ref_path = ref_path.replace(
                    f"//blendcache_{self.blend.stem}/", f"//blendcache_{self.virtual.stem}/", 1
                )
                blend_dir = str(self.virtual.parent)
            result = self.expander.expand(ref, blend_dir, ref_path)
            who = f"{blend_path}: {ref.referrer}"
            stats = self.expander.stats
            for f in result.files:
                st = stats.get(f)
                if self.expander.in_blender_install(f):
                    skipped.add(f)
                elif self.screen.admit(f, who, first=f not in found, missing=missing, st=st):
                    found[f] = self.place(f)
                    self._stream(f, found[f], st)
            stats.clear()  # this reference's files only: memory stays flat
            for m in result.missing:
                self.screen.not_found(m, who, missing)

    @staticmethod
    def _check_unique(found: dict[str, str]) -> None:
        """Checkout paths are unique by construction; a clash would lose a file, so check."""
        by_cp: dict[str, str] = {}
        for abs_path, cp in found.items():
            other = by_cp.setdefault(cp, abs_path)
            if other != abs_path:
                raise CheckoutPathClash(
                    f"{other} and {abs_path} would both land at {cp!r} in the checkout"
                )

    def _rewrite_all(self, plan: PackPlan, traces: dict[Path, _Traced]) -> dict[str, Path]:
        """Rewritten copies of the .blend files whose stored paths must change."""
        rewritten: dict[str, Path] = {}
        for i, (blend_path, traced) in enumerate(traces.items()):
            self.check_cancel(plan)
            if traced.patches:
                self.progress(f"rewriting {blend_path.name}")
                rewritten[canon(blend_path)] = self._rewrite(
                    plan, i, blend_path, traced.compression, traced.patches)
        return rewritten

    def _fill(
        self,
        plan: PackPlan,
        traces: dict[Path, _Traced],
        found: dict[str, str],
        rewritten: dict[str, Path],
        missing: dict[str, list[str]],
    ) -> None:
        files: list[PlanFile] = []
        for abs_path, cp in found.items():
            src = rewritten.get(abs_path)
            streamed = self._streamed.get(abs_path)
            if streamed is not None and src is None:
                files.append(streamed)  # the very object handed out: callers match on it
                continue
            try:
                size = (src or Path(abs_path)).stat().st_size
            except OSError:
                missing.setdefault(abs_path, []).append("(vanished while collecting)")
                continue
            files.append(PlanFile.of(src or abs_path, cp, size, abs_path,
                                     rewritten=src is not None))
        files.sort(key=lambda f: (f.checkout_path != self.main_cp, f.checkout_path))
        plan.files = files
        plan.missing = [
            MissingFile(path=p, referenced_by=tuple(sorted(set(refs))),
                        reason=self.screen.reasons.get(p, NOT_ON_DISK))
            for p, refs in sorted(missing.items())
        ]
        plan.outside_project = self.screen.outside()
        plan.refused = self.screen.refused()
        for trace in traces.values():
            plan.warnings.extend(trace.warnings)
        for group in paths.case_collisions(f.checkout_path for f in files):
            plan.warnings.append(
                "these paths differ only in letter case and will collide on a worker with a "
                "case-insensitive disk (Windows, macOS): " + ", ".join(group)
            )
        self.progress(f"{len(files)} files, {len(plan.missing)} missing")

    def _rewrite(
        self, plan: PackPlan, index: int, blend_path: Path, compression: str,
        patches: list[Patch]) -> Path:
        if plan.temp_dir is None:
            base = self.temp_base
            if base is not None:
                base.mkdir(parents=True, exist_ok=True)
            plan.temp_dir = Path(tempfile.mkdtemp(prefix="shaman-pack-", dir=base))
        dest = plan.temp_dir / f"{index:04d}" / blend_path.name
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            held = write_rewritten(blend_path, compression, patches, dest,
                                   cache_dir=self.cache_dir)
        except OSError as exc:
            raise TemporaryCopyFailed(
                f"The rewritten copy of {blend_path} could not be written in "
                f"{plan.temp_dir} ({exc.strerror or exc}); free some space there (or set "
                "TMPDIR to a folder with room) and submit again.", path=str(blend_path),
            ) from exc
        if held == dest:  # not a cache entry: ours to remove
            plan.temp_files.append(dest)
        return held
