"""Bad input (issue 6): broken .blend files, odd files and names, huge and many files,
symlinks, library cycles and bad server URLs, each through the WHOLE pipeline (collect
included) on real .blend files made by bpy in subprocesses, against the local server.

Each case reads the end state back (checkout bytes through the symlinks, what the server
stored, no temporary copies left) and adds a row to the fault report. The two big cases
run the submission in a process of its own (``fault_probe.py``) and report its time and
peak memory growth.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from shaman_addon.collect.collector import collect
from shaman_addon.errors import (
    BlendFileError,
    ConfigError,
    NotAShamanServer,
    ServerUnreachable,
)
from shaman_addon.submit import Submission

import blendgen
from fault_blends import make_blend
from fault_helpers import (
    Options,
    cache_state,
    check_checkout,
    disk_state,
    error_of,
    pack_leftovers,
    sha_of,
)

HERE = Path(__file__).resolve().parent
FAST = {"backoff_s": 0.01, "max_attempts": 3, "connect_timeout": 2.0}
"""This module's client settings (``Options`` makes them, with the upload strategy)."""
GIB = 1 << 30
SPARSE_RSS_BOUND_MIB = 96
"""A 5 GiB file must not cost more than this much extra resident memory (collect, hash,
stream it): the whole pipeline, in its own process."""


def expected_checkout(blend: Path, **kw: Any) -> dict[str, Path | bytes]:
    """Checkout path -> bytes, from a plan collected on its own (rewritten copies are read
    before they are removed). Collecting is deterministic, so the pipeline's own plan is
    the same; the bytes of plain files are compared with the artist's files."""
    plan = collect(blend, **kw)
    try:
        return {f.checkout_path: (f.source.read_bytes() if f.rewritten else f.original)
                for f in plan.files}
    finally:
        plan.cleanup()


def copy_production(info: blendgen.ProductionInfo, dest: Path) -> Path:
    shutil.copytree(info.root, dest, symlinks=True)
    return dest / info.main_blend.relative_to(info.root)


# -- broken .blend files ------------------------------------------------------------------------


def _uncompressed(blend: Path) -> bytes:
    data = blend.read_bytes()
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(data).read()
    return data


@pytest.mark.parametrize("kind", ["not a blend", "truncated", "too new (file format 2)",
                                  "too new library"])
@pytest.mark.local_server_only
def test_broken_blend_is_named(
    shaman_server: Any, basic_production: blendgen.ProductionInfo, tmp_path: Path, opts: Options,
    private_tmp: Path, fault_row: Callable[..., Any], kind: str,
) -> None:
    main = copy_production(basic_production, tmp_path / "prod")
    if kind == "not a blend":
        bad = main.with_name("notes.blend")
        bad.write_text("shopping list: milk, eggs\n")
        blend = bad
    elif kind == "truncated":
        data = main.read_bytes()
        bad = main.with_name("cut short.blend")
        bad.write_bytes(data[: len(data) * 2 // 3])
        blend = bad
    elif kind == "too new (file format 2)":
        data = bytearray(_uncompressed(main))
        assert data[:12] == b"BLENDER17-01"
        data[7:17] = b"17-02v0600"  # a header format from a future Blender
        bad = main.with_name("from the future.blend")
        bad.write_bytes(bytes(data))
        blend = bad
    else:
        lib = main.parent.parent / "libs" / "lib_01.blend"
        data = bytearray(_uncompressed(lib))
        data[7:17] = b"17-02v0600"
        lib.write_bytes(bytes(data))
        bad, blend = lib, main
    err = error_of(lambda: Submission(blend, opts(shaman_server.url, tmp_path, client=FAST)).run())
    assert isinstance(err, BlendFileError), repr(err)
    assert str(bad) in str(err) or bad.name in str(err)
    assert sum(shaman_server.counters.requests.values()) == 0
    assert pack_leftovers(private_tmp) == []
    fault_row(f"{kind} .blend", area="bad input", saw=str(err),
              end_state="named the file; no request reached the server; no temp copies")


# -- odd files --------------------------------------------------------------------------------


def _project(root: Path) -> Path:
    (root / ".blender_project").mkdir(parents=True, exist_ok=True)
    return root


def test_zero_byte_files(shaman_server: Any, tmp_path: Path, opts: Options, private_tmp: Path,
                         fault_row: Callable[..., Any]) -> None:
    project = _project(tmp_path / "project")
    for name in ("empty a.png", "empty b.exr"):
        (project / "tex").mkdir(exist_ok=True)
        (project / "tex" / name).write_bytes(b"")
    blend = make_blend(project / "shot.blend", ["//tex/empty a.png", "//tex/empty b.exr"])
    want = expected_checkout(blend)
    result = Submission(blend, opts(shaman_server.url, tmp_path, client=FAST)).run()
    n = check_checkout(shaman_server.storage, result.checkout_path, want)
    assert (hashlib.sha256(b"").hexdigest(), 0) in disk_state(shaman_server.storage).stored
    assert (shaman_server.storage / "jobs" / result.checkout_path / "tex/empty b.exr"
            ).read_bytes() == b""
    assert pack_leftovers(private_tmp) == []
    fault_row("zero-byte dependencies (two, same empty content)", area="bad input",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"checkout of {n} files; the empty blob stored once; both links "
              "read back empty; no temp copies")


TRICKY_NAMES = [
    "ünïcødé 日本語 ü.png",
    "with  two spaces .png",
    "100% done.png",
    "%41 looks escaped.png",
    "take #3.png",
    "it's \"quoted\".png",
    "new\nline.png",
    "tab\tand\rreturn.png",
    "colon: semicolon; star*.png",
    "e\u0301 decomposed.png",
]


def test_tricky_names_and_very_long_paths(
    shaman_server: Any, tmp_path: Path, opts: Options, private_tmp: Path,
    fault_row: Callable[..., Any],
) -> None:
    project = _project(tmp_path / "project")
    refs = []
    for i, name in enumerate(TRICKY_NAMES):
        p = project / "tex" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"image {i}".encode())
        refs.append("//tex/" + name)
    # A very long path: three 200-byte folders and a 240-byte name (~850 bytes in all,
    # near what Blender's 1024-byte file path field allows).
    deep = project
    for i in range(3):
        deep = deep / (f"{i}" + "ø" * 99)  # 199 bytes in UTF-8
    long_file = deep / ("L" * 236 + ".png")
    long_file.parent.mkdir(parents=True)
    long_file.write_bytes(b"deep")
    refs.append("//" + str(long_file.relative_to(project)))
    assert len(refs[-1].encode()) < 1024
    # Blender itself turns a backslash in a file path into a folder separator, so a
    # file NAMED with one cannot be used: it is listed missing, as Blender would miss it.
    (project / "tex" / "back\\slash.png").write_bytes(b"unreachable")
    refs.append("//tex/back\\slash.png")
    blend = make_blend(project / "shot.blend", refs)
    want = expected_checkout(blend)
    assert len(want) == len(TRICKY_NAMES) + 2
    result = Submission(blend, opts(shaman_server.url, tmp_path, client=FAST)).run()
    assert [m.path for m in result.missing] == [str(project / "tex" / "back" / "slash.png")]
    n = check_checkout(shaman_server.storage, result.checkout_path, want)
    longest = max(len(p.encode()) for p in want)
    assert pack_leftovers(private_tmp) == []
    shown = sorted(p for p in want if "%" in p)
    fault_row("names with unicode, spaces, %, #, quotes, newline, tab, CR, ':;*', "
              "decomposed accents; an 850-byte path; a backslash in a name", area="bad input",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"checkout of {n} files, bytes equal through the symlinks; escaped "
              f"paths {shown}; longest checkout path {longest} bytes; no temp copies; the "
              f"backslash name listed missing like Blender sees it: {result.missing[0].path}")


def test_library_cycle(shaman_server: Any, edge: dict[str, str], tmp_path: Path, opts: Options,
                       private_tmp: Path, fault_row: Callable[..., Any]) -> None:
    root = tmp_path / "edge"
    shutil.copytree(edge["root"], root, symlinks=True)
    blend = root / Path(edge["cycle_a"]).relative_to(edge["root"])
    want = expected_checkout(blend)
    result = Submission(blend, opts(shaman_server.url, tmp_path, client=FAST)).run()
    n = check_checkout(shaman_server.storage, result.checkout_path, want)
    assert {"cycle/cycle_a.blend", "cycle/cycle_b.blend"} <= set(want)
    fault_row("library cycle A -> B -> A", area="bad input",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"terminated; checkout of {n} files ({sorted(want)}) correct")


# -- symlinks ---------------------------------------------------------------------------------


def test_symlinked_dependency(
    shaman_server: Any, basic_production: blendgen.ProductionInfo, tmp_path: Path, opts: Options,
    private_tmp: Path, fault_row: Callable[..., Any],
) -> None:
    main = copy_production(basic_production, tmp_path / "prod")
    tex = main.parents[1] / "libs" / "textures" / "lib_00 color.png"
    real = tmp_path / "elsewhere" / "real texture.png"
    real.parent.mkdir()
    real.write_bytes(b"the real pixels behind a symlink")
    tex.unlink()
    tex.symlink_to(real)
    want = expected_checkout(main)
    result = Submission(main, opts(shaman_server.url, tmp_path, client=FAST)).run()
    n = check_checkout(shaman_server.storage, result.checkout_path, want)
    folder = shaman_server.storage / "jobs" / result.checkout_path
    assert (folder / "libs/textures/lib_00 color.png").read_bytes() == real.read_bytes()
    assert sha_of(real) in disk_state(shaman_server.storage).stored
    fault_row("a dependency that is a symlink to a file elsewhere", area="bad input",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"the target's bytes stored and linked at the symlink's place; "
              f"checkout of {n} files correct")


def test_symlinked_project_folder(
    shaman_server: Any, basic_production: blendgen.ProductionInfo, tmp_path: Path, opts: Options,
    private_tmp: Path, fault_row: Callable[..., Any],
) -> None:
    main = copy_production(basic_production, tmp_path / "prod")
    project = main.parents[1]
    linked = project.parent / "linked project"  # beside it: '..' means the same either way
    linked.symlink_to(project, target_is_directory=True)
    via_link = linked / main.relative_to(project)
    result = Submission(via_link, opts(shaman_server.url, tmp_path, client=FAST)).run()
    folder = shaman_server.storage / "jobs" / result.checkout_path
    entries = [p for p in folder.rglob("*") if p.is_symlink()]
    got = {p.read_bytes() for p in entries if not p.name.endswith(".blend")}
    originals = {p.read_bytes() for p in basic_production.expected_files
                 if p.suffix != ".blend"}
    assert got == originals
    assert len(entries) == len(basic_production.expected_files)
    assert (folder / "shots" / "main.blend").is_symlink()
    fault_row("the project folder reached through a symlink", area="bad input",
              saw=f"done: checkout {result.checkout_path}",
              end_state=f"checkout of {len(entries)} files: every dependency's bytes present, "
              "main .blend at shots/main.blend")


# -- big and many ------------------------------------------------------------------------------


def probe(server_url: str, blend: Path, cache_dir: Path, opts: Options) -> dict[str, Any]:
    """Submit in a process of its own, with the client settings the ``opts`` fixture
    makes (the default ones, plus the upload strategy under test)."""
    settings = dataclasses.asdict(opts.client())
    proc = subprocess.run(
        [sys.executable, str(HERE.parent / "support" / "fault_probe.py"), "--server", server_url,
         "--blend", str(blend), "--cache-dir", str(cache_dir),
         "--client-settings", json.dumps(settings)],
        capture_output=True, text=True, timeout=900,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.local_server_only
def test_5_gib_sparse_file(shaman_server: Any, tmp_path: Path, opts: Options,
                           fault_row: Callable[..., Any]) -> None:
    project = _project(tmp_path / "project")
    huge = project / "sim" / "huge cache.vdb"
    huge.parent.mkdir()
    with huge.open("wb") as f:  # sparse: a few real bytes at both ends, holes between
        f.write(b"VDB sparse head")
        f.seek(5 * GIB - 15)
        f.write(b"sparse tail end")
    assert huge.stat().st_size == 5 * GIB
    blend = make_blend(project / "shot.blend", ["//sim/huge cache.vdb"])
    try:
        out = probe(shaman_server.url, blend, tmp_path / "cache", opts)
        assert "result" in out, out
        result = out["result"]
        growth_mib = out["growth_kib"] / 1024
        assert growth_mib < SPARSE_RSS_BOUND_MIB, out
        sha, size = sha_of(huge)
        link = shaman_server.storage / "jobs" / result["checkout_path"] / "sim/huge cache.vdb"
        assert link.is_symlink() and link.stat().st_size == 5 * GIB
        assert link.resolve() == shaman_server.stored_path(sha, size).resolve()
        assert shaman_server.counters.bytes_received_by_file[(sha, size)] == 5 * GIB
        state = disk_state(shaman_server.storage)
        assert state.uploading == []
    finally:  # 5 GiB of real blocks on the server's side: give the disk back
        shutil.rmtree(shaman_server.storage / "file-store", ignore_errors=True)
        huge.unlink()
    fault_row("a 5 GiB sparse file through the whole pipeline (own process)",
              area="bad input", saw=f"done: checkout {result['checkout_path']}",
              end_state=f"the link resolves to the blob named by the file's SHA-256 (checked "
              f"by the server on receipt), 5 GiB received once, uploading/ empty; peak RSS "
              f"growth {growth_mib:.1f} MiB < {SPARSE_RSS_BOUND_MIB} MiB",
              measured={"seconds": out["seconds"], "rss_growth_mib": round(growth_mib, 1)})


@pytest.mark.slow
def test_20000_small_files(shaman_server: Any, tmp_path: Path, opts: Options,
                           fault_row: Callable[..., Any]) -> None:
    info = blendgen.generate(tmp_path / "many", libraries=1, files=20_000,
                             total_bytes=20_000 * 100, kinds="basic", seed=20)
    out = probe(shaman_server.url, info.main_blend, tmp_path / "cache", opts)
    assert "result" in out, out
    result = out["result"]
    assert result["files_total"] == len(info.expected_files) > 20_000
    assert result["files_uploaded"] + result["files_already_stored"] == result["files_total"]
    fresh_store = shaman_server.counters is not None  # the local server: an empty store
    if fresh_store:
        assert result["files_uploaded"] == result["files_total"]
    folder = shaman_server.storage / "jobs" / result["checkout_path"]
    links = [p for p in folder.rglob("*") if p.is_symlink()]
    assert len(links) == result["files_total"]
    for p in info.kinds["bulk"][::997]:  # a sample, read through the links
        rel = p.relative_to(info.project_root)
        assert (folder / rel).read_bytes() == p.read_bytes()
    state = disk_state(shaman_server.storage)
    assert state.uploading == []
    if fresh_store:
        assert len(state.stored) == result["files_total"]
    again = probe(shaman_server.url, info.main_blend, tmp_path / "cache", opts)
    assert again["result"]["files_uploaded"] == 0
    fault_row("20,000 small files (bpy-made .blend + 1 library referencing them)",
              area="bad input", saw=f"done: checkout {result['checkout_path']}",
              end_state=f"{len(links)} links in the checkout, {len(state.stored)} blobs, "
              "sampled bytes equal; an unchanged resubmission uploads 0",
              measured={"cold_s": out["seconds"],
                        "cold_rss_growth_mib": round(out["growth_kib"] / 1024, 1),
                        "resubmit_s": again["seconds"],
                        "resubmit_rss_growth_mib": round(again["growth_kib"] / 1024, 1),
                        "cold_phases_s": result["phase_seconds"]})


# -- server URLs ------------------------------------------------------------------------------


class _NotFound(http.server.BaseHTTPRequestHandler):
    """A web server that is not a Manager: a 404 page for everything."""

    def _page(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"<html><head><title>404 Not Found</title></head><body>nope</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def not_shaman() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["empty", "no scheme", "not a Shaman server",
                                  "nothing listening"])
def test_bad_server_urls(
    kind: str, not_shaman: str, basic_production: blendgen.ProductionInfo, tmp_path: Path,
    opts: Options, private_tmp: Path, fault_row: Callable[..., Any],
) -> None:
    port = _free_port()
    url = {"empty": "", "no scheme": f"127.0.0.1:{port}", "not a Shaman server": not_shaman,
           "nothing listening": f"http://127.0.0.1:{port}"}[kind]
    main = copy_production(basic_production, tmp_path / "prod")
    err = error_of(lambda: Submission(main, opts(url, tmp_path, client=FAST)).run())
    expected_type = {"empty": ConfigError, "no scheme": ConfigError,
                     "not a Shaman server": NotAShamanServer,
                     "nothing listening": ServerUnreachable}[kind]
    assert isinstance(err, expected_type), repr(err)
    if url:
        assert url in str(err)
    else:
        assert "URL" in str(err)
    assert pack_leftovers(private_tmp) == []
    rows, checked = cache_state(tmp_path / "cache")
    fault_row(f"server URL: {kind} ({url!r})", area="bad input", saw=str(err),
              end_state=f"nothing sent; no temp copies; cache {rows} rows ({checked} verified)")
