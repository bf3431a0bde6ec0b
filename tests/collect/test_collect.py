"""collect() on the every-kind production: each kind found, checked against Blender itself.

Ground truth is Blender: ``blend_tools groundtruth`` opens the main file and every library
with bpy and lists what ``bpy.utils.blend_paths`` and the library list report (UDIM tiles
and sequence frames expanded); caches and bakes, which Blender does not report, come from
the generator's explicit list.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shaman_addon.collect.collector import collect, find_project_root
from shaman_addon.shaman.protocol import is_safe_checkout_path

from blend_tools import run_tool
from blendgen import ProductionInfo


@pytest.fixture(scope="module")
def plan(every_kind_production: ProductionInfo, tmp_path_factory: pytest.TempPathFactory):
    p = collect(every_kind_production.main_blend, temp_dir=tmp_path_factory.mktemp("collect-temp"))
    yield p
    p.cleanup()


@pytest.fixture(scope="module")
def groundtruth(every_kind_production: ProductionInfo,
                tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_tool("groundtruth", every_kind_production.main_blend, tmp_path_factory.mktemp("gt"))


def originals(plan) -> set[Path]:
    return {f.original for f in plan.files}


def test_project_root_is_found_from_the_marker(every_kind_production: ProductionInfo, plan) -> None:
    assert find_project_root(every_kind_production.main_blend) == every_kind_production.project_root
    assert plan.project_root == every_kind_production.project_root
    assert plan.blend_checkout_path == "shots/main.blend"


def test_every_path_blender_reports_is_in_the_plan(plan, groundtruth: dict) -> None:
    in_plan = {str(p) for p in originals(plan)}
    reported = set()
    for p in groundtruth["all_paths"]:
        if os.path.isdir(p) or p == ".":
            continue  # cache folders: compared below, file by file
        if "/datafiles/" in p:
            continue  # Blender's own font and asset library: not files to send
        reported.add(p)
    assert reported, "Blender reported nothing; the ground truth is broken"
    assert reported - in_plan == set()
    for lib in groundtruth["libraries"]:
        assert lib in in_plan or "/datafiles/" in lib


def test_everything_the_generator_made_is_in_the_plan(every_kind_production: ProductionInfo,
                                                      plan) -> None:
    assert set(every_kind_production.expected_files) - originals(plan) == set()
    # ...and nothing else: no Blender-installation font, no packed source, no stray file.
    assert originals(plan) - set(every_kind_production.expected_files) == set()


KINDS = [
    "image png",
    "image jpg",
    "image exr",
    "udim",
    "image sequence",
    "movie",
    "library",
    "library chain",
    "library texture",
    "library world texture",
    "outside",
    "movie clip",
    "movie clip sequence",
    "sound",
    "strip image",
    "strip movie",
    "strip sound",
    "font",
    "ies light",
    "ies material",
    "osl script",
    "mesh cache",
    "geometry nodes import",
    "alembic",
    "usd",
    "volume",
    "volume sequence",
    "point cache",
    "fluid cache",
    "geometry nodes bake",
    "text",
    "absolute path",
    "dotdot path",
    "same name",
    "case collision",
    "bulk",
]


# Kinds an older bpy cannot make (the bpy 4.2 wheel has no audio, Import nodes are 4.3+);
# only when the tests run on another bpy ($SHAMAN_BPY_PYTHON) may they be absent.
VERSION_DEPENDENT = {"strip sound", "geometry nodes import"}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_collected(every_kind_production: ProductionInfo, plan, kind: str) -> None:
    files = every_kind_production.kinds.get(kind, [])
    if not files and kind in VERSION_DEPENDENT and os.environ.get("SHAMAN_BPY_PYTHON"):
        return
    assert files, f"the generator made no {kind}"
    missing = set(files) - originals(plan)
    assert not missing, f"{kind}: not collected: {sorted(missing)}"


def test_not_files_are_not_sent(every_kind_production: ProductionInfo, plan) -> None:
    sent = {str(p) for p in originals(plan)}
    for what, path in every_kind_production.not_files.items():
        assert path not in sent, what
    assert not any("<builtin>" in str(p) for p in sent)
    assert not any("/datafiles/" in str(p) for p in sent)


def test_checkout_paths_are_safe_unique_and_keep_the_layout(
    every_kind_production: ProductionInfo, plan
) -> None:
    cps = [f.checkout_path for f in plan.files]
    assert len(cps) == len(set(cps))
    assert all(is_safe_checkout_path(cp) for cp in cps)
    for f in plan.files:
        if f.original.is_relative_to(every_kind_production.project_root):
            rel = f.original.relative_to(every_kind_production.project_root).as_posix()
            assert f.checkout_path == rel
        else:
            assert f.checkout_path.startswith("_outside_project/")
    outside = every_kind_production.outside_files[0]
    listed = {o.path: o for o in plan.outside_project}
    assert listed[str(outside)].referenced_by  # what uses it is named
    assert f"_outside_project{outside}" in cps


def test_main_first_and_sizes_match(plan) -> None:
    assert plan.files[0].checkout_path == plan.blend_checkout_path
    for f in plan.files:
        assert f.size == f.source.stat().st_size


def test_case_collision_is_a_warning(plan) -> None:
    assert any("textures/Case.png" in w and "textures/case.png" in w for w in plan.warnings)


def test_nothing_is_missing(plan) -> None:
    assert plan.missing == []


def test_rewritten_blends_are_temporary_copies(every_kind_production: ProductionInfo, plan) -> None:
    rewritten = {f.original: f.source for f in plan.files if f.rewritten}
    # main (absolute paths) and the chain's base (outside texture) must be rewritten
    assert every_kind_production.main_blend in rewritten
    base = next(p for p in every_kind_production.libraries if p.name == "base.blend")
    assert base in rewritten
    for original, copy in rewritten.items():
        assert copy != original
        assert copy in plan.temp_files
        assert plan.temp_dir is not None and copy.is_relative_to(plan.temp_dir)
    # libraries whose paths all stay valid are sent as they are
    unchanged = [f for f in plan.files if f.original.suffix == ".blend" and not f.rewritten]
    assert unchanged
