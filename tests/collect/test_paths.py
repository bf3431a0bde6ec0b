"""Checkout paths: hostile inputs never give an unsafe or shared path.

``to_checkout_path`` is the single place checkout paths are made; hypothesis throws
absolute paths on other drives, ``..`` chains, unicode look-alikes, NUL and control
characters, backslashes and very long names at it. Every result is safe by the server's
rules, and distinct files always get distinct paths (or a clear PathTooLong).
"""

from __future__ import annotations

import posixpath
from pathlib import PurePosixPath, PureWindowsPath

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shaman_addon.collect.expand import resolve
from shaman_addon.collect.paths import (
    blend_relative,
    case_collisions,
    outside_project_path,
    to_checkout_path,
)
from shaman_addon.errors import PathTooLong
from shaman_addon.shaman.protocol import is_safe_checkout_path

# Names built from the characters that cause trouble.
TRICKY = st.sampled_from(
    [
        "..",
        ".",
        "",
        "\\",
        ":",
        "%",
        "%2F",
        "\x00",
        "\x1f",
        "\x7f",
        "\u2215",  # division slash, looks like /
        "\uff0f",  # fullwidth solidus
        "\u2024\u2024",  # one-dot leaders, look like ..
        "\u202e",  # right-to-left override
        "\udc80",  # a raw byte that is not UTF-8 (os.fsdecode surrogate)
        "C:",
        "_outside_project",
        "é",
        "e\u0301",  # the same letter, decomposed
        " ",
        "a",
        "Z",
        "0",
        "~",
    ]
)
PART = st.lists(TRICKY | st.text(min_size=1, max_size=8), min_size=1, max_size=4).map("".join)
ROOT = "/work/project"
# Half of the paths start inside the project root, to mix inside and outside mappings.
PARTS = st.one_of(
    st.lists(PART, min_size=1, max_size=6),
    st.lists(PART, min_size=1, max_size=5).map(lambda p: ["work", "project", *p]),
)


def posix_abs(parts: list[str]) -> str:
    return "/" + "/".join(parts)


def check_safe(cp: str) -> None:
    assert is_safe_checkout_path(cp), repr(cp)
    assert not cp.startswith("/")
    assert "\\" not in cp
    for part in cp.split("/"):
        assert part not in ("", ".", "..")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(PARTS)
@example(["..", "..", "etc", "passwd"])
@example(["work", "project", "..", "..", "..", "x"])
@example(["work", "project", "_outside_project", "a.png"])
def test_posix_results_are_always_safe(parts: list[str]) -> None:
    path = posix_abs(parts)
    try:
        cp = to_checkout_path(path, ROOT)
    except PathTooLong:
        return
    check_safe(cp)


@settings(max_examples=300)
@given(PARTS, PARTS)
def test_distinct_files_get_distinct_paths(a: list[str], b: list[str]) -> None:
    pa, pb = posix_abs(a), posix_abs(b)
    na, nb = posixpath.normpath(pa), posixpath.normpath(pb)
    try:
        ca, cb = to_checkout_path(pa, ROOT), to_checkout_path(pb, ROOT)
    except PathTooLong:
        return
    if na.lstrip("/") != nb.lstrip("/"):
        assert ca != cb, (pa, pb)
    else:
        assert ca == cb


@settings(max_examples=300)
@given(st.sampled_from("CDZcd"), PARTS)
@example("C", ["..", "Windows", "..", "..", "x"])
def test_windows_drives(drive: str, parts: list[str]) -> None:
    parts = [p.replace("\\", "_").replace("/", "_") for p in parts]
    path = PureWindowsPath(f"{drive}:\\" + "\\".join(parts))
    try:
        cp = to_checkout_path(path, PureWindowsPath("E:\\project"))
    except PathTooLong:
        return
    check_safe(cp)
    assert cp.startswith(f"_outside_project/{drive.upper()}")


def test_readable_mappings() -> None:
    assert outside_project_path(PureWindowsPath("C:\\x\\y")) == "_outside_project/C/x/y"
    assert outside_project_path("C:\\x\\y") == "_outside_project/C/x/y"
    assert outside_project_path(PurePosixPath("/mnt/tex/a b.png")) == (
        "_outside_project/mnt/tex/a b.png"
    )
    assert outside_project_path("\\\\server\\share\\tex\\a.png") == (
        "_outside_project/UNC/server/share/tex/a.png"
    )
    assert to_checkout_path("/p/textures/wood ü.png", "/p") == "textures/wood ü.png"
    assert to_checkout_path("/p/../p/x.png", "/p") == "x.png"
    assert to_checkout_path("/px/x.png", "/p") == "_outside_project/px/x.png"
    # inside a project folder that happens to be called like the outside folder
    assert to_checkout_path("/p/_outside_project/a", "/p") != "_outside_project/a"
    # windows roots compare without case
    assert to_checkout_path(PureWindowsPath("D:\\Proj\\Tex\\a.png"), "d:\\proj") == "Tex/a.png"


def test_escapes_are_reversible_in_spirit() -> None:
    assert to_checkout_path("/p/a\\b.png", "/p") == "a%5Cb.png"
    assert to_checkout_path("/p/100%.png", "/p") == "100%25.png"
    assert to_checkout_path("/p/a%5Cb.png", "/p") == "a%255Cb.png"  # no clash with the above
    assert to_checkout_path("/p/tab\there", "/p") == "tab%09here"
    assert to_checkout_path("/p/raw\udcff", "/p") == "raw%FF"
    assert to_checkout_path("/p/C:x/y", "/p") == "C%3Ax/y"


def test_nul_and_control_characters() -> None:
    cp = to_checkout_path("/p/a\x00b/c", "/p")
    assert "\x00" not in cp and is_safe_checkout_path(cp)


def test_too_long_is_an_error_that_names_the_file() -> None:
    with pytest.raises(PathTooLong, match="too long"):
        to_checkout_path("/p/" + "x" * 300 + ".png", "/p")
    with pytest.raises(PathTooLong, match="bytes"):
        to_checkout_path("/p/" + "/".join(["d" * 200] * 20), "/p")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/abs",
        "a/../b",
        "..",
        "./a",
        "a//b",
        "a/",
        "a\\b",
        "C:/x",
        "c:x",
        "a\x00b",
        "a\nb",
        "x/\udc80",
    ],
)
def test_unsafe_paths_are_recognised(bad: str) -> None:
    assert not is_safe_checkout_path(bad)


@pytest.mark.parametrize("good", ["a", "a/b.png", "_outside_project/C/x", "...", "a b/ü.png"])
def test_safe_paths_are_accepted(good: str) -> None:
    assert is_safe_checkout_path(good)


def test_blend_relative() -> None:
    assert blend_relative("textures/a.png", "shots/main.blend") == "//../textures/a.png"
    assert blend_relative("shots/a.png", "shots/main.blend") == "//a.png"
    assert blend_relative("a.png", "main.blend") == "//a.png"
    assert blend_relative(".", "shots/x/main.blend") == "//../.."


def test_case_collisions() -> None:
    groups = case_collisions(["t/Case.png", "t/case.png", "T/other.png", "u/x.png"])
    assert ("t/Case.png", "t/case.png") in groups
    assert ("T/", "t/") in groups
    assert not case_collisions(["a/b.png", "a/c.png"])


def test_resolve_reads_paths_like_blender() -> None:
    assert resolve("/p/shots", "//../tex/a.png") == "/p/tex/a.png"
    assert resolve("/p/shots", "//..\\tex\\a.png") == "/p/tex/a.png"
    assert resolve("/p/shots", "//tex//./b/../a.png") == "/p/shots/tex/a.png"
    assert resolve("/p/shots", "/abs/x.png") == "/abs/x.png"
    assert resolve("/p/shots", "//../../../../x.png") == "/x.png"
    assert resolve("/p/shots", "C:\\textures\\x.png") == "C:/textures/x.png"
    assert resolve("/p/shots", "rel/x.png") == "/p/shots/rel/x.png"


def test_the_plain_posix_shortcut_agrees_with_the_general_way() -> None:
    """Checkout paths of plain POSIX text skip pathlib (100,000 files a shot); the result
    must be the one the general way gives, for any path and root."""
    import random

    rng = random.Random(14)
    parts = ["a", "B", ".", "..", "", "_outside_project", "x%y", "c:d", "é", "t\\u", " ",
             "\x80", "\udcff", "\x07"]
    for _ in range(20_000):
        path = "/" + "/".join(rng.choice(parts) for _ in range(rng.randint(0, 5)))
        root = "/" + "/".join(rng.choice(parts[:4]) for _ in range(rng.randint(0, 2)))
        try:
            general = to_checkout_path(PurePosixPath(path), PurePosixPath(root))
        except PathTooLong:
            continue
        assert to_checkout_path(path, root) == general, (path, root)
