"""The end-to-end proof: a checkout built from the pack plan opens with nothing missing
and renders exactly like the source.

The plan of the every-kind production is materialised the way a Shaman server does it
(content store + relative symlinks), then opened with bpy in a subprocess: no missing
data-block, every path Blender reports lies INSIDE the checkout with the source's bytes,
and a 64x64 Cycles render (CPU, 4 samples, seed 0) equals the source's pixel for pixel.
The artist's files are hashed before and after: nothing was written to them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shaman_addon.collect.collector import collect

from blend_fixtures import materialise, sha256_file, tree_hashes
from blend_tools import run_tool
from blendgen import ProductionInfo


@contextlib.contextmanager
def source_hidden(production: ProductionInfo) -> Iterator[None]:
    """Move the whole production away (absolute paths to it then lead nowhere)."""
    hidden = production.root.with_name(production.root.name + "-hidden")
    production.root.rename(hidden)
    try:
        yield
    finally:
        hidden.rename(production.root)


@pytest.fixture(scope="module")
def checkout(hideable_production: ProductionInfo, tmp_path_factory: pytest.TempPathFactory):
    before = tree_hashes(hideable_production.root)
    tmp = tmp_path_factory.mktemp("e2e")
    plan = collect(hideable_production.main_blend, temp_dir=tmp / "temp")
    main = materialise(plan, tmp / "store", tmp / "jobs" / "job-1")
    yield plan, main, tmp, before
    plan.cleanup()


def test_checkout_opens_with_nothing_missing_and_same_bytes(
    hideable_production: ProductionInfo, checkout
) -> None:
    plan, main, tmp, _before = checkout
    root = main.parent.parent  # jobs/job-1 (main is shots/main.blend)
    assert plan.blend_checkout_path == "shots/main.blend"
    source_of = {f.checkout_path: sha256_file(f.source) for f in plan.files}
    with source_hidden(hideable_production):
        gt = run_tool("groundtruth", main, tmp)

    # every file Blender opened, main and libraries included, reports nothing missing
    assert set(gt["files"]) >= {str(main)}
    opened = [p for p in gt["files"] if "/datafiles/" not in p]  # Blender's own: not sent
    assert len(opened) == 1 + len(hideable_production.libraries)
    for path, report in gt["files"].items():
        assert report["missing_ids"] == [], path

    wanted: set[str] = set()
    for p in gt["all_paths"]:
        if p == "." or os.path.isdir(p) or "/datafiles/" in p:
            continue
        assert os.path.normpath(p).startswith(str(root) + "/"), f"{p} is outside the checkout"
        cp = os.path.relpath(p, root)
        assert cp in source_of, f"Blender wants {cp}, which the plan does not hold"
        assert os.path.exists(p), p
        assert sha256_file(Path(p)) == source_of[cp], cp
        wanted.add(cp)
    # ...and the plan holds nothing else than what Blender wants, the main file and the
    # caches and bakes Blender does not list (the generator's explicit list)
    caches = {
        f.relative_to(hideable_production.project_root).as_posix()
        for kind in ("point cache", "fluid cache", "geometry nodes bake")
        for f in hideable_production.kinds[kind]
    }
    assert set(source_of) - wanted - caches == {plan.blend_checkout_path}
    for kind in ("udim", "image sequence", "strip image", "movie clip sequence", "outside"):
        for f in hideable_production.kinds[kind]:
            cp = next(pf.checkout_path for pf in plan.files if pf.original == f)
            assert str(root / cp) in gt["all_paths"], (kind, cp)


def test_caches_and_bakes_are_where_blender_looks(hideable_production: ProductionInfo,
                                                  checkout) -> None:
    _plan, main, _tmp, _before = checkout
    root = main.parent.parent
    for kind in ("point cache", "fluid cache", "geometry nodes bake"):
        for f in hideable_production.kinds[kind]:
            rel = f.relative_to(hideable_production.project_root).as_posix()
            assert (root / rel).is_file(), (kind, rel)
            assert sha256_file(root / rel) == sha256_file(f)


def test_render_of_checkout_equals_render_of_source(hideable_production: ProductionInfo,
                                                    checkout) -> None:
    _plan, main, tmp, _before = checkout
    src = run_tool("render", hideable_production.main_blend, tmp)
    with source_hidden(hideable_production):
        dst = run_tool("render", main, tmp)
    assert src["nonblack_pixels"] > 1000, "the source render is empty; the test proves nothing"
    assert dst["sha256"] == src["sha256"]


def test_source_files_unchanged(hideable_production: ProductionInfo, checkout) -> None:
    *_rest, before = checkout
    assert tree_hashes(hideable_production.root) == before
