"""Turning a Shaman server's error answer into an error a person can act on.

Kept apart from the HTTP code because it is pure logic: a status, a reason phrase and
a body in whatever shape it came (``{"code","message"}``, ``{"message"}`` alone, an HTML
page from a proxy, nothing at all) in; one ``ShamanError`` subclass out, whose message
names the URL and quotes the server's own words.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from ..errors import (
    CheckoutExists,
    ChecksumMismatch,
    InvalidCheckoutPath,
    MissingFilesAtCheckout,
    NotAShamanServer,
    ServerError,
    ShamanDisabled,
    ShamanError,
)
from ..untrusted import shown

DISABLED_MESSAGE = "shaman server not active"
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"<[^>]+>")
_PREVIEW = 160
_MESSAGE_LIMIT = 500  # of a server's message quoted in an error (escaped, see untrusted)


def preview_json(value: Any) -> str:
    """A JSON value that is not a string, as short text (any depth, never raising)."""
    try:
        return json.dumps(value)[:_MESSAGE_LIMIT * 2]
    except (ValueError, TypeError, RecursionError):
        return repr(type(value).__name__)


@dataclass(frozen=True)
class ErrorBody:
    """What could be read from an error answer's body."""

    message: str  # the server's message ("" when there was none)
    is_json: bool  # a JSON object (any shape)
    text: str  # a short, single-line preview of a non-JSON body ("" when empty)
    is_html: bool = False

    def describe(self) -> str:
        """How to name the body in a sentence."""
        if self.is_json:
            return f"the message {self.message!r}" if self.message else "a JSON body"
        if not self.text:
            return "an empty body"
        kind = "an HTML page" if self.is_html else "a text body"
        return f"{kind} ({self.text!r})"


def read_error_body(content: bytes, content_type: str = "") -> ErrorBody:
    """Parse any body without raising."""
    text = content.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read
            data = None
        if isinstance(data, dict):
            message = data.get("message")
            if not isinstance(message, str):
                message = "" if message is None else preview_json(message)
            return ErrorBody(message=shown(message.strip(), _MESSAGE_LIMIT), is_json=True,
                             text="")
    is_html = "html" in content_type.lower() or text[:200].lstrip().lower().startswith(
        ("<!doctype html", "<html", "<head", "<body")
    )
    if is_html:
        title = _TITLE_RE.search(text)
        text = title.group(1) if title else _TAG_RE.sub(" ", text)
        text = html.unescape(text)
    preview = shown(" ".join(text[:_PREVIEW * 8].split()), _PREVIEW)
    return ErrorBody(message="", is_json=False, text=preview, is_html=is_html)


def is_disabled(status: int, body: ErrorBody) -> bool:
    return status == 503 and body.message.strip().lower() == DISABLED_MESSAGE


def error_from_response(
    what: str, url: str, status: int, reason: str, body: ErrorBody
) -> ShamanError:
    """The error for an answer with an error status. ``what`` says what was being done
    ("Uploading /path/file.png"); it starts the sentence."""
    answered = f"{url} answered {status}{' ' + reason if reason else ''}"
    quoted = f': "{body.message}"' if body.message else ""
    kw: dict[str, Any] = {"url": url, "status": status, "server_message": body.message}
    known = _known_error(what, url, status, body, answered, quoted, kw)
    if known is not None:
        return known
    if not body.is_json:
        return _not_json_error(what, url, status, body, answered, kw)
    if body.message:
        return ServerError(f"{what}: {answered}{quoted}", **kw)
    return ServerError(f"{what}: {answered} without a message", **kw)


def _known_error(what: str, url: str, status: int, body: ErrorBody, answered: str,
                 quoted: str, kw: dict[str, Any]) -> ShamanError | None:
    """The error for an answer the protocol describes, by its status or by the message a
    real Manager sends instead; None for any other."""
    said = f"{answered}{quoted}"
    # A real Manager wraps some messages: "unexpected error: unknown files requested...".
    message_lc = body.message.lower().removeprefix("unexpected error:").strip()
    if is_disabled(status, body):
        return ShamanDisabled(
            f"{what}: the Flamenco Manager at {url} runs without Shaman ({said}); enable "
            "Shaman in flamenco-manager.yaml and restart the Manager", **kw)
    if status == 404:
        return NotAShamanServer(
            f"{what}: {answered} (not found); this is not a Flamenco 3 Manager "
            "with a Shaman API; check the Shaman server URL setting", url=url, status=status)
    if status == 417:
        return ChecksumMismatch(
            f"{what}: {said}: the bytes the server received do not match the declared size "
            "or SHA-256 (did the file change after it was hashed?)", **kw)
    if status == 424 or (status == 500 and message_lc.startswith("unknown files requested")):
        return MissingFilesAtCheckout(
            f"{what}: {said}: the server does not have every file the checkout needs "
            "(uploaded files may have been garbage-collected); submit again", **kw)
    if message_lc.startswith("invalid checkout path"):
        return InvalidCheckoutPath(
            f"{what}: {said}: the server refused the checkout path; change the job name or "
            "checkout path template", **kw)
    if status == 409:
        return CheckoutExists(
            f"{what}: {said}: a checkout with that path exists already; choose another job "
            "name", **kw)
    return None


def _not_json_error(what: str, url: str, status: int, body: ErrorBody, answered: str,
                    kw: dict[str, Any]) -> ShamanError:
    """An error answer without a JSON body: a proxy's page, or not a Manager at all."""
    if status == 413:
        return ServerError(
            f"{what}: {answered} with {body.describe()}: the request is too large for the "
            "server or a proxy in front of it (a proxy's upload size limit?)", **kw)
    if status in (502, 503, 504):
        return ServerError(
            f"{what}: {answered} with {body.describe()}: a proxy or gateway in front of the "
            "Manager could not reach it, or the Manager is restarting", **kw)
    return NotAShamanServer(
        f"{what}: {answered} with {body.describe()} instead of a Shaman error message; is "
        "this the Flamenco Manager's URL?", url=url, status=status)
