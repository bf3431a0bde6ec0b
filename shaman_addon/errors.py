"""Errors a person can act on.

Every failure the core reports is a ``ShamanError``; its ``str()`` is a full sentence
that names the file, the server or the setting at fault. The command line prints it
as is, the Blender layer shows it in a report, so no traceback reaches the artist.
"""

from __future__ import annotations


class ShamanError(Exception):
    """Base of every error the core raises on purpose."""


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


class PathTooLong(ShamanError):
    """A rewritten path would not fit the fixed-size field in the .blend file."""


class MissingDependencies(ShamanError):
    """``fail_on_missing`` is set and dependencies are missing; nothing was sent."""


class Cancelled(ShamanError):
    """The submission was cancelled; what was fully uploaded stays on the server."""
