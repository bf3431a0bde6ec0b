"""collect() in the corner cases: missing files, cycles, damaged files, long paths,
as_name, cancel, caching, determinism, backslashes. All on real .blend files made by bpy.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from shaman_addon.collect import trace as trace_module
from shaman_addon.collect.collector import collect
from shaman_addon.collect.rewrite import Patch, apply_patches, read_uncompressed
from shaman_addon.collect.trace import trace_blend
from shaman_addon.errors import BlendFileError, Cancelled, ConfigError, PathTooLong

from blend_fixtures import materialise, sha256_file
from blend_tools import run_tool
from blendgen import ProductionInfo


def plan_summary(plan) -> dict:
    """The plan without the temporary paths (which differ from run to run)."""
    data = plan.to_json()
    for f in data["files"]:
        f.pop("source")
    return data


# -- missing files


def test_missing_files_are_listed_with_their_referrers(edge: dict[str, str]) -> None:
    plan = collect(Path(edge["missing"]))
    try:
        missing = {m.path: m.referenced_by for m in plan.missing}
        root = edge["root"]
        blend = edge["missing"]
        assert missing[f"{root}/textures/gone.png"] == (f"{blend}: IM gone rel",)
        assert missing["/nonexistent/folder/gone.png"] == (f"{blend}: IM gone abs",)
        assert missing[f"{root}/textures/seq/gone_0001.png"] == (f"{blend}: IM gone seq",)
        assert f"{blend}: IM gone udim" in missing[f"{root}/textures/udim/gone.<UDIM>.png"]
        assert missing[edge["missing_library"]] == (f"{blend}: LI vanishing lib.blend",)
        # what exists is still sent; what is missing is not in the file list
        sent = {str(f.original) for f in plan.files}
        assert edge["present"] in sent
        assert not sent & set(missing)
    finally:
        plan.cleanup()


def test_library_cycle_terminates(edge: dict[str, str]) -> None:
    plan = collect(Path(edge["cycle_a"]))
    try:
        assert [f.checkout_path for f in plan.files] == [
            "cycle/cycle_a.blend",
            "cycle/cycle_b.blend",
        ]
        assert plan.missing == []
    finally:
        plan.cleanup()


# -- files that are not (good) .blend files


def test_not_a_blend_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.blend"
    bad.write_text("this is not a blend file\n")
    with pytest.raises(BlendFileError, match=r"notes\.blend") as info:
        collect(bad)
    assert info.value.path == str(bad)


@pytest.mark.parametrize("compressed", [True, False])
def test_truncated_blend_names_the_file(
    every_kind_production: ProductionInfo, tmp_path: Path, compressed: bool
) -> None:
    data = every_kind_production.main_blend.read_bytes()
    if not compressed:
        data = read_uncompressed(every_kind_production.main_blend, "zstd")
    bad = tmp_path / "cut off.blend"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(BlendFileError, match=r"cut off\.blend"):
        collect(bad)


def test_too_new_header_names_the_file(every_kind_production: ProductionInfo,
                                       tmp_path: Path) -> None:
    data = bytearray(read_uncompressed(every_kind_production.main_blend, "zstd"))
    data[7:17] = b"99-99v9999"  # a header format BAT has never seen
    bad = tmp_path / "future.blend"
    bad.write_bytes(bytes(data))
    with pytest.raises(BlendFileError, match=r"future\.blend"):
        collect(bad)


def test_a_damaged_library_names_the_library(
    basic_production: ProductionInfo, tmp_path: Path
) -> None:
    copy = tmp_path / "prod"
    shutil.copytree(basic_production.root, copy, symlinks=True)
    lib = copy / "project" / "libs" / "lib_01.blend"
    lib.write_bytes(b"BLENDER-v500 broken")
    with pytest.raises(BlendFileError, match=r"lib_01\.blend"):
        collect(copy / "project" / "shots" / "main.blend")


def test_nonexistent_blend_and_bad_project_root(tmp_path: Path,
                                                every_kind_production: ProductionInfo) -> None:
    with pytest.raises(BlendFileError, match=r"nothing\.blend"):
        collect(tmp_path / "nothing.blend")
    with pytest.raises(ConfigError, match="no such dir"):
        collect(every_kind_production.main_blend, project_root=tmp_path / "no such dir")


# -- rewriting


def test_rewritten_path_too_long_is_an_error_never_truncated(
    edge: dict[str, str], tmp_path: Path
) -> None:
    with pytest.raises(PathTooLong, match=r"deep\.blend") as info:
        collect(Path(edge["long"]), temp_dir=tmp_path)
    assert "IM deep" in str(info.value)
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_packed_and_builtin_are_not_files(edge: dict[str, str]) -> None:
    plan = collect(Path(edge["packed"]))
    try:
        assert Path(edge["packed_library"]).is_file()  # on disk, but travels packed
        assert [f.checkout_path for f in plan.files] == ["packed.blend"]
        assert plan.missing == []
        assert not plan.files[0].rewritten
    finally:
        plan.cleanup()


def test_collecting_twice_gives_identical_plans_and_bytes(
    every_kind_production: ProductionInfo, tmp_path: Path
) -> None:
    one = collect(every_kind_production.main_blend, temp_dir=tmp_path / "one")
    two = collect(every_kind_production.main_blend, temp_dir=tmp_path / "two")
    try:
        assert plan_summary(one) == plan_summary(two)
        rewritten_one = [f for f in one.files if f.rewritten]
        rewritten_two = [f for f in two.files if f.rewritten]
        assert len(rewritten_one) >= 2
        for a, b in zip(rewritten_one, rewritten_two, strict=True):
            assert a.source != b.source
            assert sha256_file(a.source) == sha256_file(b.source)
    finally:
        one.cleanup()
        two.cleanup()
    assert one.temp_dir is not None and not one.temp_dir.exists()


def test_rewritten_copies_keep_compression_and_change_only_paths(
    every_kind_production: ProductionInfo,
) -> None:
    plan = collect(every_kind_production.main_blend)
    try:
        main = next(f for f in plan.files if f.checkout_path == plan.blend_checkout_path)
        assert main.rewritten
        assert main.source.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd, like Blender 5 saves
        before = read_uncompressed(every_kind_production.main_blend, "zstd")
        after = read_uncompressed(main.source, "zstd")
        assert len(before) == len(after)
        changed = trace_blend(every_kind_production.main_blend)
        ranges = [(r.slot.offset, r.slot.offset + r.slot.size) for r in changed.refs if r.slot]
        for i, (x, y) in enumerate(zip(before, after, strict=True)):
            if x != y:
                assert any(a <= i < b for a, b in ranges), f"byte {i} changed outside a path field"
        ground = next(r for r in trace_blend(main.source).refs if r.referrer == "IM ground")
        assert ground.path.startswith("//../_outside_project/")
    finally:
        plan.cleanup()


def test_backslash_paths_are_found_and_rewritten(
    basic_production: ProductionInfo, tmp_path: Path
) -> None:
    """A path written on Windows (backslashes) is found and sent with forward slashes."""
    copy = tmp_path / "prod"
    shutil.copytree(basic_production.root, copy, symlinks=True)
    lib = copy / "project" / "libs" / "lib_00.blend"
    trace = trace_blend(lib)
    ref = next(r for r in trace.refs if r.referrer == "IM lib_00 color")
    assert ref.path == "//textures/lib_00 color.png"
    windows = "//textures\\lib_00 color.png"
    patched = apply_patches(
        read_uncompressed(lib, trace.compression), [Patch(ref.slot, ref.path, windows, "")], lib
    )
    lib.write_bytes(patched)  # an uncompressed .blend, as Blender also reads
    assert run_tool("inspect", lib, tmp_path)["paths"]  # Blender still reads it
    plan = collect(copy / "project" / "shots" / "main.blend")
    try:
        sent = {f.original: f for f in plan.files}
        tex = copy / "project" / "libs" / "textures" / "lib_00 color.png"
        assert tex in sent
        assert sent[lib].rewritten
        new = next(r for r in trace_blend(sent[lib].source).refs if r.referrer == "IM lib_00 color")
        assert new.path == "//textures/lib_00 color.png"
    finally:
        plan.cleanup()


# -- as_name


def test_as_name_in_the_same_folder(every_kind_production: ProductionInfo, tmp_path: Path) -> None:
    copy = tmp_path / "prod"
    shutil.copytree(every_kind_production.root, copy, symlinks=True)
    shots = copy / "project" / "shots"
    temp_copy = shots / "main.tmp-autosave.blend"
    shutil.copyfile(shots / "main.blend", temp_copy)
    plan = collect(temp_copy, as_name="main.blend")
    try:
        cps = {f.checkout_path: f for f in plan.files}
        assert plan.blend_checkout_path == "shots/main.blend"
        assert cps["shots/main.blend"].original == temp_copy
        assert "shots/main.tmp-autosave.blend" not in cps
        assert "shots/blendcache_main/clothcache_000001_00.bphys" in cps
    finally:
        plan.cleanup()


def test_as_name_elsewhere_opens_in_blender(edge: dict[str, str], tmp_path: Path) -> None:
    """A copy saved by Blender in another folder, submitted as the real shot file."""
    plan = collect(Path(edge["asname_copy"]), as_name=edge["asname_shot"])
    try:
        cps = {f.checkout_path: f for f in plan.files}
        assert plan.project_root == Path(edge["root"])
        assert plan.blend_checkout_path == "asname/shot.blend"
        assert cps["asname/tex/color.png"].original == Path(edge["asname_texture"])
        for cache in json.loads(edge["asname_caches"]):
            rel = os.path.relpath(cache, edge["root"])
            assert cps[rel].original == Path(cache)
        assert cps["asname/shot.blend"].rewritten  # its relative paths moved
        main = materialise(plan, tmp_path / "store", tmp_path / "checkout")
        report = run_tool("inspect", main, tmp_path)
        tex = str(tmp_path / "checkout" / "asname" / "tex" / "color.png")
        assert tex in report["paths"]
    finally:
        plan.cleanup()


# -- cancel and caching


def test_cancel_leaves_no_temp_files(every_kind_production: ProductionInfo, tmp_path: Path) -> None:
    cancel = threading.Event()
    seen: list[str] = []

    def progress(msg: str) -> None:
        seen.append(msg)
        if msg.startswith("rewriting"):
            cancel.set()  # after the first rewritten copy was started

    with pytest.raises(Cancelled, match=r"main\.blend"):
        collect(every_kind_production.main_blend, temp_dir=tmp_path, cancel=cancel,
                on_progress=progress)
    assert any(m.startswith("rewriting") for m in seen)
    assert list(tmp_path.iterdir()) == []


def test_cancel_before_start(every_kind_production: ProductionInfo, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        collect(every_kind_production.main_blend, temp_dir=tmp_path, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_skips_tracing_and_gives_the_same_plan(
    every_kind_production: ProductionInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = collect(every_kind_production.main_blend, cache_dir=cache)
    calls: list[Path] = []
    real = trace_module.trace_blend

    def counting(path: Path):
        calls.append(path)
        return real(path)

    import shaman_addon.collect.trace_cache as trace_cache

    monkeypatch.setattr(trace_cache, "trace_blend", counting)
    shutil.rmtree(cache / "collections")  # no record of the collection: each .blend is read
    second = collect(every_kind_production.main_blend, cache_dir=cache)
    try:
        assert calls == []  # every .blend came from the cache
        assert plan_summary(first) == plan_summary(second)
        for a, b in zip(first.files, second.files, strict=True):
            assert sha256_file(a.source) == sha256_file(b.source)
    finally:
        first.cleanup()
        second.cleanup()


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_rewritten_copy_keeps_gzip_or_no_compression(
    basic_production: ProductionInfo, tmp_path: Path, compression: str
) -> None:
    """Files saved by older Blenders (gzip) or uncompressed stay so, deterministically."""
    import gzip

    copy = tmp_path / "prod"
    shutil.copytree(basic_production.root, copy, symlinks=True)
    main = copy / "project" / "shots" / "main.blend"
    raw = read_uncompressed(main, "zstd")
    main.write_bytes(gzip.compress(raw, mtime=12345) if compression == "gzip" else raw)
    one = collect(main, temp_dir=tmp_path / "one")
    two = collect(main, temp_dir=tmp_path / "two")
    try:
        a = next(f for f in one.files if f.original == main)
        b = next(f for f in two.files if f.original == main)
        assert a.rewritten  # the absolute outside texture
        assert a.source.read_bytes() == b.source.read_bytes()
        magic = a.source.read_bytes()[:2]
        assert magic == (b"\x1f\x8b" if compression == "gzip" else b"BL")
        assert trace_blend(a.source).compression == compression
        assert run_tool("inspect", a.source, tmp_path)["n_images"] > 0  # Blender reads it
    finally:
        one.cleanup()
        two.cleanup()


def test_an_unreadable_data_block_is_a_warning_not_a_failure(
    every_kind_production: ProductionInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A layout BAT does not know (a newer Blender) costs that data-block, not the job."""
    real = trace_module._extra_refs

    def flaky(block):
        if block.code == b"TX":
            raise KeyError("a field this Blender renamed")
        return real(block)

    monkeypatch.setattr(trace_module, "_extra_refs", flaky)
    plan = collect(every_kind_production.main_blend)
    try:
        assert any("main.blend" in w and "TX rig tools.py" in w for w in plan.warnings)
        sent = {f.original for f in plan.files}
        assert every_kind_production.kinds["text"][0] not in sent  # what that block held is lost...
        assert set(every_kind_production.kinds["udim"]) <= sent  # ...the rest is still there
    finally:
        plan.cleanup()


def test_expansion_of_sequences_tiles_and_caches(tmp_path: Path) -> None:
    from shaman_addon.collect.expand import Expander
    from shaman_addon.collect.trace import CACHE_GLOB, DIRECTORY, SEQUENCE, UDIM, Ref

    names = [
        "f_0001.png", "f_0002.png", "f_0010.png", "f_0001.jpg", "g_0001.png",
        "t.1001.exr", "t.1002.exr", "t.100.exr", "t.extra.exr",
        "u.u1_v1.png", "u.u2_v1.png", "pc_000001_00.bphys", "pc_000002_00.bphys", "pd_x.bphys",
    ]  # fmt: skip
    for n in names:
        (tmp_path / n).write_bytes(b"x")
    (tmp_path / "cache" / "sub").mkdir(parents=True)
    (tmp_path / "cache" / "sub" / "a.vdb").write_bytes(b"x")
    ex = Expander()

    def files(kind: str, path: str) -> list[str]:
        out = ex.expand(Ref(kind, path, "IM x", None), tmp_path, path)
        return sorted(Path(f).name for f in out.files) + [f"missing:{m}" for m in out.missing]

    assert files(SEQUENCE, "//f_0002.png") == ["f_0001.png", "f_0002.png", "f_0010.png"]
    assert files(UDIM, "//t.<UDIM>.exr") == ["t.1001.exr", "t.1002.exr"]
    assert files(UDIM, "//u.<UVTILE>.png") == ["u.u1_v1.png", "u.u2_v1.png"]
    assert files(CACHE_GLOB, "//pc_*.bphys") == ["pc_000001_00.bphys", "pc_000002_00.bphys"]
    assert files(CACHE_GLOB, "//none_*.bphys") == []  # never baked: not missing
    assert files(DIRECTORY, "//cache/") == ["a.vdb"]
    assert files(DIRECTORY, "//no cache/") == []
    assert files(SEQUENCE, "//h_0001.png") == [f"missing:{tmp_path}/h_0001.png"]


def test_escaped_names_still_open_in_the_checkout(edge: dict[str, str], tmp_path: Path) -> None:
    """'%', ':' and tabs are escaped in checkout paths; the rewritten .blend points at the
    escaped names, so Blender still finds every file in the checkout. A file name with a
    backslash cannot be reached by Blender on Linux at all (it reads the backslash as a
    separator): it is missing for Blender, and so for the collector."""
    plan = collect(Path(edge["escaped"]))
    try:
        originals = {f.original: f for f in plan.files}
        odd = [Path(p) for p in json.loads(edge["escaped_files"])]
        backslashed = next(p for p in odd if "\\" in p.name)
        assert backslashed not in originals
        assert [m.path for m in plan.missing] == [str(backslashed.parent / "back" / "slash.png")]
        odd.remove(backslashed)
        cps = sorted(originals[p].checkout_path for p in odd)
        assert cps == [
            "escaped/seq%25/f%25_0001.png",
            "escaped/seq%25/f%25_0002.png",
            "escaped/tex/50%25 gray.png",
            "escaped/tex/a%3Ab.png",
            "escaped/tex/tab%09here.png",
        ]
        assert originals[Path(edge["escaped"])].rewritten
        main = materialise(plan, tmp_path / "store", tmp_path / "checkout")
        report = run_tool("inspect", main, tmp_path)
        root = str(tmp_path / "checkout") + "/"
        found = [p for p in report["paths"] if os.path.isfile(p)]
        assert all(p.startswith(root) for p in report["paths"]), report["paths"]
        assert len(found) == len(odd)
    finally:
        plan.cleanup()


def test_rewrite_cache_keeps_only_the_newest(tmp_path: Path) -> None:
    from shaman_addon.collect.rewrite import _prune

    for i in range(10):
        f = tmp_path / f"{i}.blend"
        f.write_bytes(b"x")
        os.utime(f, ns=(i * 10**9, i * 10**9))
    (tmp_path / "other.txt").write_text("kept")
    _prune(tmp_path, keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "7.blend",
        "8.blend",
        "9.blend",
        "other.txt",
    ]


def test_rewrite_cache_never_prunes_an_entry_in_use(tmp_path: Path) -> None:
    """A second submission must not delete the copy a running one is about to send."""
    from shaman_addon.collect.rewrite import _mark_used, _prune

    for i in range(10):
        f = tmp_path / f"{i}.blend"
        f.write_bytes(b"x")
        os.utime(f, ns=(i * 10**9, i * 10**9))
    ctime_before = (tmp_path / "0.blend").stat().st_ctime_ns
    assert _mark_used(tmp_path / "0.blend")  # the oldest, just taken by a submission
    after = (tmp_path / "0.blend").stat()
    # checksum-cache key untouched: the mtime, and the ctime (the stamp is beside it)
    assert (after.st_mtime_ns, after.st_ctime_ns) == (0, ctime_before)
    assert not _mark_used(tmp_path / "gone.blend")
    _prune(tmp_path, keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0.blend", "0.blend.used", "8.blend", "9.blend"]
    # recently used entries stay even past the count; old ones go once past it
    for i in range(5):
        f = tmp_path / f"new{i}.blend"
        f.write_bytes(b"x")
    _prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "0.blend", "0.blend.used", "new0.blend", "new1.blend", "new2.blend", "new3.blend",
        "new4.blend"]


def test_strip_folders_are_rewritten(edge: dict[str, str], tmp_path: Path) -> None:
    """Sequencer strips keep their folder in a field of its own (768 bytes)."""
    plan = collect(Path(edge["strips"]))
    try:
        sent = {f.original: f for f in plan.files}
        for f in json.loads(edge["strips_files"]):
            assert sent[Path(f)].checkout_path.startswith("_outside_project/")
        main = sent[Path(edge["strips"])]
        assert main.rewritten
        dirs = sorted(r.path for r in trace_blend(main.source).refs if r.slot and r.slot.holds_dir)
        assert len(dirs) == 2
        assert all(d.startswith("//_outside_project/") and d.endswith("/") for d in dirs)
        checkout = tmp_path / "checkout"
        report = run_tool("inspect", materialise(plan, tmp_path / "store", checkout), tmp_path)
        assert len(report["paths"]) == 3
        for p in report["paths"]:
            assert p.startswith(str(checkout) + "/") and os.path.isfile(p), p
    finally:
        plan.cleanup()


def test_library_paths_are_rewritten_when_the_main_file_moves(
    basic_production: ProductionInfo, tmp_path: Path
) -> None:
    """Placed one folder deeper (as_name), every stored path of the main file, its
    library paths included, must change; Blender then finds every library and texture."""
    prod = basic_production
    deeper = prod.project_root / "shots" / "seq 010" / "main.blend"
    plan = collect(prod.main_blend, as_name=str(deeper))
    try:
        assert plan.blend_checkout_path == "shots/seq 010/main.blend"
        main = next(f for f in plan.files if f.checkout_path == plan.blend_checkout_path)
        libs = [r for r in trace_blend(main.source).refs if r.kind == "library"]
        assert libs and all(r.path.startswith("//../../libs/") for r in libs)
        checkout = tmp_path / "checkout"
        opened = materialise(plan, tmp_path / "store", checkout)
        gt = run_tool("groundtruth", opened, tmp_path)
        assert len(gt["files"]) == 1 + len(prod.libraries)
        for path, report in gt["files"].items():
            assert path.startswith(str(checkout) + "/")
            assert report["missing_ids"] == [], path
        for p in gt["all_paths"]:
            assert p.startswith(str(checkout) + "/") and os.path.isfile(p), p
    finally:
        plan.cleanup()
