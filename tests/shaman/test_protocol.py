"""The protocol's bottom module (shaman_addon.shaman.protocol): the one rule for a safe
checkout path, the client's gate built on it, and that importing it pulls in no HTTP."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shaman_addon.collect.paths import is_safe_checkout_path as collect_rule
from shaman_addon.errors import ConfigError
from shaman_addon.shaman.protocol import FileSpec, check_file_spec, is_safe_checkout_path

REPO = Path(__file__).resolve().parents[2]

SAFE = ["a.png", "textures/wood.png", "_outside_project/C/x.exr", "ünï/cødé ☃.png",
        "a..b/c.", ".hidden/x", "x/y/z/w.blend", "name with spaces.txt", "%2E%2E/x"]
UNSAFE = ["", "/etc/passwd", "../escape.png", "a/../../b", "a/..", "./a", "a/./b", "a//b",
          "a/", "C:/x.png", "c:rel.png", "tex\\a.png", "a/\x00/b", "tab\there.png",
          "line\nbreak.png", "del\x7f.png", "c1\x85control.png", "surrogate\ud800.png"]


@pytest.mark.parametrize("path", SAFE)
def test_safe_paths_pass(path: str) -> None:
    assert is_safe_checkout_path(path)
    check_file_spec(FileSpec("0" * 64, 1, path))


@pytest.mark.parametrize("path", UNSAFE)
def test_unsafe_paths_are_refused_before_sending(path: str) -> None:
    """Why: the server does not check file paths; one with a '..', '.' or empty part, a
    drive letter, a backslash or a control character could land outside the checkout
    or be read differently by the farm's machines."""
    assert not is_safe_checkout_path(path)
    with pytest.raises(ConfigError, match="not a clean relative path"):
        check_file_spec(FileSpec("0" * 64, 1, path))


@pytest.mark.parametrize("path", SAFE + UNSAFE)
def test_the_same_rule_as_collect(path: str) -> None:
    """Why: ``collect/`` makes checkout paths and the client refuses unsafe ones; until
    ``collect/`` imports this function, the two must agree on every sample."""
    assert is_safe_checkout_path(path) is collect_rule(path)


def test_checksum_and_size_are_checked() -> None:
    with pytest.raises(ConfigError, match="64 lower-case hex"):
        check_file_spec(FileSpec("A" * 64, 1, "a.png"))
    with pytest.raises(ConfigError, match="negative"):
        check_file_spec(FileSpec("0" * 64, -1, "a.png"))


def test_importing_the_protocol_pulls_in_no_http() -> None:
    """Why: ``collect/`` imports the path rule; it must not load ``requests``/``urllib3``
    (nor anything else of the HTTP client) to get it."""
    code = ("import sys; import shaman_addon.shaman.protocol; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('requests', 'urllib3', 'http') or m.startswith('shaman_addon.shaman.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=120)
    assert out.stdout.strip() == "['shaman_addon.shaman.protocol']"


def test_a_files_body_is_what_json_dumps_gives_and_refuses_bad_specs() -> None:
    """Requirements and checkout bodies are encoded piece by piece (no dict per file); the
    server must receive exactly the text ``requests`` sent for ``json=`` before."""
    import json

    from shaman_addon.shaman.protocol import FilesBodies

    def files_body(specs, **extra):  # a fresh one: nothing remembered
        return FilesBodies().body(specs, **extra)

    files = [FileSpec("a" * 64, 3, 'tex/é "quoted" ☃.png'), FileSpec("b" * 64, 0, "x")]
    as_dicts = [{"sha": f.sha, "size": f.size, "path": f.path} for f in files]
    assert files_body(files).data == json.dumps({"files": as_dicts}).encode()
    assert files_body(files, checkoutPath="shot/ü").data == json.dumps(
        {"files": as_dicts, "checkoutPath": "shot/ü"}).encode()
    assert files_body([]).data == b'{"files": []}'
    for bad in (FileSpec("A" * 64, 1, "x"), FileSpec("a" * 64, -1, "x"),
                FileSpec("a" * 64, 1, "../x")):
        with pytest.raises(ConfigError):
            files_body([bad])


def test_paths_in_a_files_body_are_quoted_exactly_as_json_dumps_quotes_them() -> None:
    """The shortcut for plain paths must give json.dumps's text for every string."""
    import json
    import random

    from shaman_addon.shaman.protocol import _json_text

    rng = random.Random(14)
    alphabet = [chr(i) for i in range(130)] + ["é", "\u2028", "\udcff", "☃"]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        assert _json_text(text) == json.dumps(text), repr(text)


def test_the_one_expression_for_plain_paths_accepts_only_what_the_whole_rule_does() -> None:
    """The fast path (one regular expression, 300,000 checks a 100,000-file run) must
    never accept a path the whole rule refuses, nor one whose JSON text needs an escape;
    and it must take the common paths, or it saves nothing."""
    import json
    import random

    from shaman_addon.shaman import protocol

    def whole_rule(path: str) -> bool:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(protocol, "_PLAIN_SAFE", protocol.re.compile(r"(?!)"))
            return protocol.is_safe_checkout_path(path)

    rng = random.Random(15)
    pieces = ["a", "B", ".", "..", "/", "\\", '"', ":", "C:", " ", "\x00", "\x1f", "\x7f",
              "é", "\u2028", "~", "-", "x/", "/.", "./"]
    taken = 0
    for _ in range(60_000):
        path = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        if protocol._PLAIN_SAFE.fullmatch(path):
            taken += 1
            assert whole_rule(path), repr(path)
            assert json.dumps(path) == f'"{path}"', repr(path)
        assert protocol.is_safe_checkout_path(path) is whole_rule(path), repr(path)
    assert taken > 1_000
    for common in ("bulk/b0001/f000123.png", "shots/main.blend", "_outside_project/a b.exr"):
        assert protocol._PLAIN_SAFE.fullmatch(common)


@contextlib.contextmanager
def _counted_encodings() -> Iterator[list[int]]:
    """The length of each list ``protocol.files_array`` encodes inside the block."""
    from shaman_addon.shaman import protocol

    calls: list[int] = []
    real = protocol.files_array

    def counted(specs):
        calls.append(len(specs))
        return real(specs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(protocol, "files_array", counted)
        yield calls


def test_the_last_list_is_encoded_once_and_a_changed_one_again() -> None:
    """The checkout sends the list the last requirements call asked about: its JSON is
    reused, and must be what a fresh encoding gives; a list that changed (a re-hash gives
    one file another checksum) is encoded afresh."""
    from shaman_addon.shaman import protocol

    files = [FileSpec("a" * 64, i, f"d/f{i}.png") for i in range(50)]
    changed = [*files[:10], FileSpec("b" * 64, 10, "d/f10.png"), *files[11:]]
    expected = [protocol.FilesBodies().body(files).data,
                protocol.FilesBodies().body(files, checkoutPath="x").data,
                protocol.FilesBodies().body(changed, checkoutPath="x").data]
    bodies = protocol.FilesBodies()
    with _counted_encodings() as calls:
        got = [bodies.body(files).data, bodies.body(tuple(files), checkoutPath="x").data,
               bodies.body(changed, checkoutPath="x").data]
    assert got == expected
    assert calls == [50, 50]  # the checkout's body reused the first array


def test_the_whole_list_is_encoded_once_around_a_call_about_a_few_files() -> None:
    """One file changed: the whole list is asked about, then the file just sent, then
    the checkout sends the whole list again; its JSON is encoded once, however many
    small calls come between. Two lists are kept: the last, and the longest before it."""
    from shaman_addon.shaman import protocol

    whole = [FileSpec("a" * 64, i, f"d/f{i}.png") for i in range(40)]
    few = whole[7:8]
    other = [FileSpec("c" * 64, i, f"e/f{i}.png") for i in range(3)]
    bodies = protocol.FilesBodies()
    with _counted_encodings() as calls:
        got = [bodies.body(whole).data, bodies.body(few).data,
               bodies.body(whole, checkoutPath="x").data]
        assert calls == [40, 1]
        bodies.body(other)
        bodies.body(few)
        bodies.body(whole)  # kept through two more small calls
        assert calls == [40, 1, 3, 1]
        bodies.body(other)
        assert calls == [40, 1, 3, 1, 3]  # `few` took its place (the last and the longest)
    assert got == [protocol.FilesBodies().body(whole).data,
                   protocol.FilesBodies().body(few).data,
                   protocol.FilesBodies().body(whole, checkoutPath="x").data]
