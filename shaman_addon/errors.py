"""Errors a person can act on.

Every failure the core reports is a ``ShamanError``; its ``str()`` is a full sentence
that names the file, the server or the setting at fault. The command line prints it
as is, the Blender layer shows it in a report, so no traceback reaches the artist.
"""

from __future__ import annotations

import enum
from typing import Literal, Self


class ShamanError(Exception):
    """Base of every error the core raises on purpose."""

    def reworded(self, message: str) -> Self:
        """The same error (same class, same attributes) saying ``message``: for adding
        what only the caller knows, as ``raise err.reworded(...) from err``, so the
        original stays as it was, as the cause."""
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        new.args = (message,)
        return new


def error_text(exc: BaseException) -> str:
    """The sentence for any failure: ours as it is, anything else named plainly (a bug
    shows its type, so a report of it can be acted on)."""
    if isinstance(exc, ShamanError):
        return str(exc)
    return f"Unexpected error ({type(exc).__name__}): {exc}"


class ConfigError(ShamanError):
    """A setting is wrong (empty URL, no scheme, bad template...)."""


class ServerUnreachable(ShamanError):
    """No HTTP answer at all: refused, DNS failure, timeout, dropped connection."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class ServerTimeout(ServerUnreachable):
    """The server accepted the connection but did not answer in time."""


class NotAShamanServer(ShamanError):
    """Something answered, but not like a Flamenco Manager (404, HTML, odd JSON)."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ServerError(ShamanError):
    """The server answered with an error; ``server_message`` is its own words."""

    def __init__(
        self, message: str, *, url: str, status: int | None, server_message: str = ""
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.server_message = server_message


class ShamanDisabled(ServerError):
    """503 ``shaman server not active``: the Manager runs without Shaman."""


class ChecksumMismatch(ServerError):
    """417: the bytes the server received do not match the declared size or SHA-256."""


class MissingFilesAtCheckout(ServerError):
    """424 (spec) or 500 ``unknown files requested in checkout`` (real Manager)."""


class InvalidCheckoutPath(ServerError):
    """The server refused the checkout path."""


class CheckoutExists(ServerError):
    """409 (spec style only): the checkout path is taken."""


class CheckoutAnswerLost(ServerError):
    """``checkout/create`` was sent but no answer came back.

    The checkout may or may not exist now; repeating the call could make a second one,
    so this is reported with the path asked for instead of being retried.
    """


class UploadReset(ShamanError):
    """The connection dropped while an upload was being sent.

    A real Manager does this when another client finishes the same content first; the
    caller asks the file's status and goes on.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class LocalFileChanged(ShamanError):
    """A file changed (size or mtime) or vanished between hashing and sending."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class BlendFileError(ShamanError):
    """A .blend file cannot be read: not a .blend, truncated, or too new."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class CredentialFileRefused(ShamanError):
    """A dependency lies in a credential store (``~/.ssh``...) and sending credential
    files was not allowed; nothing of that file was read or sent."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class TemporaryCopyFailed(ShamanError):
    """The rewritten copy of a .blend could not be written (a full disk, say); nothing
    partial is left behind."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class BlendTooLarge(BlendFileError):
    """A compressed .blend expands past the ceiling on decompressed size (a damaged file
    or a decompression bomb): refused before it fills memory or the disk."""


class BlendCatalogueTooLarge(BlendFileError):
    """A .blend's DNA catalogue or a block header states a count or size beyond the
    ceiling no real file reaches: the file is damaged, refused before BAT allocates."""


class BlendListLoops(BlendFileError):
    """A linked list inside a .blend leads back to itself or runs past the ceiling on
    list length: the file is damaged, and following it would never end."""


class PathTooLong(ShamanError):
    """A rewritten path would not fit the fixed-size field in the .blend file."""


class MissingDependencies(ShamanError):
    """``fail_on_missing`` is set and dependencies are missing; nothing was sent.
    ``missing`` holds each missing path with what references it (for ``--json``)."""

    def __init__(self, message: str, *, missing: tuple[tuple[str, tuple[str, ...]], ...] = ()
                 ) -> None:
        super().__init__(message)
        self.missing = missing


class Cancelled(ShamanError):
    """The submission was cancelled; what was fully uploaded stays on the server."""


class UnsafeCheckoutPath(ShamanError):
    """A file would land at a path that could leave the checkout folder (a bug in
    collecting: the server does not check file paths, so nothing is sent)."""


class CheckoutPathClash(ShamanError):
    """Two different files would land at the same path in the checkout."""


class FilesNeverStored(ShamanError):
    """The server still lacks files after every bounded upload round."""

    def __init__(self, message: str, *, url: str, paths: tuple[str, ...]) -> None:
        super().__init__(message)
        self.url = url
        self.paths = paths


class UploadKeepsDropping(ShamanError):
    """One file's upload was cut off more times than the bound allows."""

    def __init__(self, message: str, *, url: str, path: str) -> None:
        super().__init__(message)
        self.url = url
        self.path = path


class CheckoutNamesTaken(ShamanError):
    """The server refused every checkout name tried as taken."""


class UploadNeverSettles(ShamanError):
    """A file's uploads keep being answered "already stored" (208) while the file's
    status says it is not: past the bound, the submission stops instead of sending it
    for ever."""

    def __init__(self, message: str, *, url: str, path: str) -> None:
        super().__init__(message)
        self.url = url
        self.path = path


class UnsafeServerAnswer(NotAShamanServer):
    """The server answered with a value that is unsafe to use: a checkout path that is
    not a safe relative path, or requirements about files nobody asked about."""


class Busy(ShamanError):
    """A submission is already running in this Blender session."""


class OnlineAccessRefused(ConfigError):
    """The server is not on the local network and Blender's online access is off."""


class BatVersionMismatch(ShamanError):
    """The installed BAT is not the version whose private hooks the tracer overrides."""


# -- render jobs (the Manager's job API) ------------------------------------------


class ManagerTooOld(ShamanError):
    """The Manager answers, but without the job API this extension submits through."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class JobTypeUnknown(ShamanError):
    """The Manager has no job type of that name (the message lists the ones it has)."""


class WorkerTagUnknown(ShamanError):
    """No worker tag of that name on the Manager (the message lists the ones it has)."""


class JobSettingInvalid(ConfigError):
    """A job setting's value does not fit its job type: names the key, the type or the
    choices expected, and where the value came from (--set, the panel, the script)."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class SettingNotComputable(ConfigError):
    """A job setting's automatic value reads something only Blender can evaluate; the
    message names the setting and the ``--set KEY=VALUE`` that supplies it."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class JobRefused(ServerError):
    """The Manager refused the job (400 from ``/jobs/check`` or ``/jobs``):
    ``server_message`` holds its own words (a bad frame range, a movie format...)."""


class JobTypeStale(ServerError):
    """412 again after refreshing the job type once: it changed on the Manager while
    this submission was prepared."""


class JobNotSubmitted(ShamanError):
    """The checkout exists but submitting the render job failed; ``checkout_path`` says
    where the files are, so the job can be submitted again without uploading."""

    def __init__(self, message: str, *, checkout_path: str) -> None:
        super().__init__(message)
        self.checkout_path = checkout_path


class SharedStorageUnavailable(ShamanError):
    """Shaman is disabled on the Manager and the .blend is not inside the Manager's
    shared storage, so the farm cannot reach it."""


class NotKnownWithoutBlender(AttributeError):
    """Internal signal: a job setting's expression read something the command line's
    reading of the .blend (``jobs/scene_blend.py``) does not know. ``what`` is the name
    as the expression wrote it ('C.scene.render.engine'). An AttributeError, so
    ``getattr(x, name, default)`` in an expression still works; ``evaluate_settings``
    turns it into ``SettingNotComputable`` naming the setting and its ``--set``."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not known without Blender")
        self.what = what


# -- transport failures: internal signals, never shown to a person as they are --------


class Terminated(KeyboardInterrupt):
    """SIGTERM reached the command line: handled like Ctrl-C (cancel, clean up), but
    it exits 143, as a shell reports a terminated process. A KeyboardInterrupt, so
    every place that cleans up after Ctrl-C does so for it too."""


class TransportFailure(Exception):
    """A request got no usable HTTP answer.

    Both ways of sending (``requests``, and the pipelined plain-http lane) raise these
    and nothing else for network trouble; the Shaman client turns them into
    ``ServerUnreachable``, ``ServerTimeout`` or ``UploadReset`` with the URL and the
    setting at fault, and decides from the class whether trying again is safe.
    ``reason`` is a few lower-case words for the end of a sentence ("connection reset by
    peer"); the low-level exception it came from is its ``__cause__``.
    """

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


ConnectKind = Literal["refused", "unresolved", "timeout", "proxy", "tls", "other"]


class ConnectFailed(TransportFailure):
    """No connection was made, so nothing was sent: trying again is always safe, and
    worth it for every ``kind`` but ``"tls"`` (a certificate does not fix itself).

    ``kind`` says why: ``"refused"``, ``"unresolved"``, ``"timeout"``, ``"proxy"``,
    ``"tls"`` or ``"other"``.
    """

    def __init__(self, reason: str, *, kind: ConnectKind = "other") -> None:
        super().__init__(reason, timed_out=kind == "timeout")
        self.kind: ConnectKind = kind


class ExchangeFailed(TransportFailure):
    """The request (or part of it) went out and no complete answer came back: the
    connection dropped, or the server stopped answering for the read timeout. Whether
    the server acted on the request is unknown."""


class DeadlinePassed(ExchangeFailed):
    """The whole exchange (connect, request, answer) took longer than its overall
    deadline: the server answers too slowly, or drips its answer to hold the call."""

    def __init__(self, reason: str, *, deadline_s: float) -> None:
        super().__init__(reason, timed_out=True)
        self.deadline_s = deadline_s


class RequestNotRead(ExchangeFailed):
    """A pipelined request written behind an answer that closed the connection
    (``Connection: close``): the server never read it, so sending it again is a first
    attempt, not a repeat (RFC 9112, section 9.3.2)."""


class AttemptPhase(enum.Enum):
    """How far one request got before it failed: all the retry rules look at."""

    CONNECT = "connect"  # no connection was made: nothing was sent
    SENT = "sent"  # the request (or part of it) went out; no usable answer
    STATUS = "status"  # an HTTP answer with an error status
    FINAL = "final"  # never retried (TLS, cancel, local file, odd answer...)


class AttemptFailed(Exception):
    """One attempt's failure inside the Shaman client's retry loop: ``error`` for the
    person, ``phase`` for the rules. ``cause``: the failure the error was made from, its
    ``__cause__`` when raised (as ``raise error from cause`` would set it, also for a
    reworded copy's original). The loop raises ``error``, never this."""

    def __init__(self, error: ShamanError, phase: AttemptPhase, status: int | None = None,
                 cause: BaseException | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.phase = phase
        self.status = status
        self.cause = cause
        if cause is not None:
            error.__cause__ = cause
