"""The Shaman protocol's vocabulary, with no HTTP in it: the typed values the client
sends and gets back, and the one rule for a safe path inside a checkout.

Why a module of its own: ``collect/`` makes checkout paths and the client refuses unsafe
ones before sending; both must apply the same rule, and ``collect/`` must not pull in
``requests`` to do it. This module imports nothing but ``errors``.
"""

from __future__ import annotations

import enum
import json
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

API = "/api/v3"
FILE_STATUSES = ("unknown", "uploading", "stored")
REQUIREMENT_STATUSES = ("unknown", "uploading")
EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

_SHA_RE = re.compile(r"[0-9a-f]{64}")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_PART = r'(?!\.\.?(?:/|\Z))[\x20\x21\x23-\x2e\x30-\x5b\x5d-\x7e]+'
_PLAIN_SAFE = re.compile(rf"(?![A-Za-z]:){_PART}(?:/{_PART})*")
"""The common safe checkout path, in one regular expression: printable ASCII parts, none
empty, ``.`` or ``..``, no backslash, no drive letter, no quote (so its JSON text needs no
escape). Whatever it matches ``is_safe_checkout_path`` accepts (a fuzz test holds them
equal); the rest goes through the whole rule."""


@dataclass(slots=True)
class FileSpec:
    """One file as the server knows it: content (sha, size) and place in the checkout.
    Not frozen, for speed (as ``PlanFile``)."""

    sha: str
    size: int
    path: str


@dataclass(frozen=True, slots=True)
class FileRequirement:
    """A file the server still needs: ``unknown`` (send it) or ``uploading`` (someone is)."""

    sha: str
    size: int
    path: str
    status: str


class UploadResult(enum.Enum):
    STORED = "stored"  # 200 (real Manager) or 204 (API description)
    ALREADY_KNOWN = "known"  # 208: not proof of storage; re-check requirements
    DEFERRED = "deferred"  # 425: someone else is uploading it; try later


@dataclass(frozen=True)
class ManagerConfiguration:
    storage_location: str
    shaman_enabled: bool
    is_first_run: bool


@dataclass(frozen=True)
class ServerCheck:
    """The answer to "Check server", in plain words for the artist."""

    ok: bool
    reachable: bool
    is_manager: bool
    shaman_enabled: bool
    message: str


def is_safe_checkout_path(path: str) -> bool:
    """True when the server can be given ``path`` without any risk of escaping the
    checkout: relative, ``/``-separated, no empty, ``.`` or ``..`` part, no backslash, no
    drive letter, no control character. (The server checks none of this.)"""
    if not isinstance(path, str) or not path:
        return False
    if _PLAIN_SAFE.fullmatch(path):
        return True  # most paths: one match (300,000 checks a 100,000-file run)
    if path.startswith("/") or "\\" in path or _DRIVE_RE.match(path):
        return False
    if not (path.isascii() and path.isprintable()) and any(
            unicodedata.category(c) in ("Cc", "Cs") for c in path):
        return False
    return not has_empty_or_dot_part(path)


def has_empty_or_dot_part(path: str) -> bool:
    """Is any ``/``-separated part empty, ``.`` or ``..``? (String tests: this runs for
    every file of every submission.)"""
    wrapped = f"/{path}/"
    return "//" in wrapped or "/./" in wrapped or "/../" in wrapped


def is_checksum(sha: str) -> bool:
    """64 lower-case hex digits: the server compares checksums as strings."""
    return _SHA_RE.fullmatch(sha) is not None


def check_file_spec(spec: FileSpec) -> None:
    """Refuse what the server would not catch: a path that is not a safe checkout path,
    an upper-case or malformed checksum (417 later), a negative size."""
    if not is_checksum(spec.sha):
        raise ConfigError(
            f"Checksum {spec.sha!r} of {spec.path!r} is not 64 lower-case hex digits"
        )
    if spec.size < 0:
        raise ConfigError(f"Size {spec.size} of {spec.path!r} is negative")
    if not is_safe_checkout_path(spec.path):
        raise ConfigError(
            f"Checkout path {spec.path!r} is not a clean relative path (no leading '/', "
            "no '.' or '..' part, no drive letter, no control character, '/' separators); "
            "refusing to send it"
        )


def _json_text(text: str) -> str:
    """``json.dumps(text)``, without its machinery for the common path that needs no
    escape (printable ASCII, no quote or backslash): 200,000 calls a 100,000-file run."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return json.dumps(text)


@dataclass(frozen=True)
class JsonBody:
    """A request body already encoded as JSON: the byte-for-byte text ``json.dumps``
    gives (what ``requests`` sends for ``json=``), made without a dict per file."""

    data: bytes


def files_array(files: Sequence[FileSpec]) -> bytes:
    """The JSON array of ``files`` (each checked first), as ``json.dumps`` writes it,
    built from one piece of text per file: going through a dict per file, then text,
    then bytes held 50 MB at once at 100,000 files."""
    pieces = []
    plain, checksum = _PLAIN_SAFE.fullmatch, _SHA_RE.fullmatch
    for spec in files:
        sha, size, path = spec.sha, int(spec.size), spec.path
        if plain(path) and checksum(sha) and size >= 0:  # safe, and nothing to escape
            pieces.append(f'{{"sha": "{sha}", "size": {size}, "path": "{path}"}}')
        else:
            check_file_spec(spec)
            pieces.append(f'{{"sha": "{sha}", "size": {size}, "path": {_json_text(path)}}}')
    if not pieces:
        return b"[]"
    pieces[0] = "[" + pieces[0]  # not "[" + text + "]": 10 MB at 100,000 files, copied
    pieces[-1] += "]"
    text = ", ".join(pieces)
    del pieces
    return text.encode()


def _with_files(array: bytes, extra: dict[str, str]) -> JsonBody:
    more = "".join(f", {json.dumps(name)}: {json.dumps(value)}" for name, value in extra.items())
    return JsonBody(b"".join((b'{"files": ', array, more.encode(), b"}")))


class FilesBodies:
    """Request bodies ``{"files": [...], **extra}``, remembering two lists encoded: the
    last one, and the longest of those before it. A submission's whole-list
    requirements call and its checkout send the same list (100,000 files: ~10 MB of
    JSON, 0.2 s to encode), which is then encoded once, however many calls about the few
    files just uploaded come in between. Safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: list[tuple[list[FileSpec], bytes]] = []  # the newest first

    def body(self, files: Sequence[FileSpec], **extra: str) -> JsonBody:
        listed = list(files)
        with self._lock:
            recent = list(self._recent)
        for known, array in recent:  # the same objects: compared by identity first
            if known == listed:
                return _with_files(array, extra)
        array = files_array(listed)
        with self._lock:
            longest = max(self._recent, key=lambda known: len(known[0]), default=None)
            self._recent = [(listed, array)] + ([longest] if longest else [])
        return _with_files(array, extra)
