"""Screening each dependency before it is placed: can it be read, should it leave?

A file the collector found is one of: sent (inside the project, or outside it and then
listed with what references it); missing with a reason (not readable, a system file:
never opened); or a credential file, refused (see ``sensitive``). Symlinks count by
their target: a link inside the project to a file elsewhere is outside.
"""

from __future__ import annotations

import os

from ..errors import CredentialFileRefused
from .expand import canon
from .plan import OutsideFile
from .sensitive import ALLOW_HOW, RealPaths, credential_store, is_inside, system_file

NOT_READABLE = "on disk but not readable (permission denied)"
NOT_A_FILE = "on disk but not a regular file"


class Screen:
    """Decides, once per file, whether it is admitted; remembers who references the
    files that are outside the project or refused."""

    def __init__(self, root_key: str, *, allow_credentials: bool, list_refused: bool) -> None:
        self.root = root_key
        self.real_root = canon(os.path.realpath(root_key))
        self.allow_credentials = allow_credentials
        self.list_refused = list_refused
        self.reals = RealPaths()
        self.reasons: dict[str, str] = {}  # path -> why it is listed as missing
        self._outside: dict[str, tuple[str, str | None]] = {}  # path -> (target, store)
        self._refused: dict[str, tuple[str, str]] = {}
        self._refs: dict[str, list[str]] = {}

    def admit(self, path: str, who: str, *, first: bool,
              missing: dict[str, list[str]], st: os.stat_result | None = None) -> bool:
        """Should ``path`` (referenced by ``who``) be placed and sent? ``first``: it was
        not admitted before; ``st``: its ``lstat`` if known (a regular file). Raises
        CredentialFileRefused (unless allowed or listed)."""
        refs = self._refs.get(path)
        if refs is not None:
            refs.append(who)
        if not first or path in self._refused:
            return False
        if path in self.reasons:
            missing.setdefault(path, []).append(who)
            return False
        real, regular = self.reals.real(path, st)
        why = self._unsendable(path, real, regular)
        if why is not None:
            self.reasons[path] = why
            missing.setdefault(path, []).append(who)
            return False
        store = credential_store(path) or (credential_store(real) if real != path else None)
        if store is not None and not self.allow_credentials:
            if not self.list_refused:
                raise CredentialFileRefused(refusal_text(path, real, store, who), path=path)
            self._refused[path] = (real, store)
            self._refs[path] = [who]
            return False
        if not (is_inside(path, self.root) and is_inside(real, self.real_root)):  # real: normal
            self._outside[path] = (real, store)
            self._refs[path] = [who]
        return True

    def not_found(self, path: str, who: str, missing: dict[str, list[str]]) -> None:
        """A path the expander did not find as a file: missing, said why when it is
        there but is something else (a device, a folder)."""
        if path not in self.reasons:
            what = system_file(path)
            if what is not None:
                self.reasons[path] = f"{what}: never read"
            elif os.path.lexists(path):
                self.reasons[path] = NOT_A_FILE
        missing.setdefault(path, []).append(who)

    @staticmethod
    def _unsendable(path: str, real: str, regular: bool) -> str | None:
        what = system_file(path) or system_file(real)
        if what is not None:
            return f"{what}: never read"
        if not regular:
            return NOT_A_FILE
        if not os.access(path, os.R_OK):
            return NOT_READABLE
        return None

    def outside(self) -> list[OutsideFile]:
        return [OutsideFile(p, real, tuple(sorted(set(self._refs[p]))), store)
                for p, (real, store) in sorted(self._outside.items())]

    def refused(self) -> list[OutsideFile]:
        return [OutsideFile(p, real, tuple(sorted(set(self._refs[p]))), store)
                for p, (real, store) in sorted(self._refused.items())]


def refusal_text(path: str, real: str, store: str, who: str) -> str:
    """The sentence of a refused credential file: which, why, who uses it, how to allow."""
    via = f" (a link to {real})" if real != path else ""
    return (f"{path}{via} is in {store}, where credentials are kept, and is referenced by "
            f"{who}; it was not sent and the submission stopped. Remove the reference, or "
            f"if it really is meant for the farm, {ALLOW_HOW}.")
