"""From what went wrong on the wire to a sentence a person can act on.

A ``TransportFailure`` (from either way of sending) or an error answer becomes an
``AttemptFailed``: the ``ShamanError`` to show, naming the URL and the setting at fault,
and the ``Phase`` the retry rules judge. Only the failure's type, ``kind`` and
``timed_out`` are looked at, so both ways of sending get the same words and retries.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from ..errors import (
    AttemptFailed,
    AttemptPhase,
    ConnectFailed,
    DeadlinePassed,
    NotAShamanServer,
    ServerTimeout,
    ServerUnreachable,
    TransportFailure,
    UploadReset,
)
from .messages import Answer
from .server_errors import error_from_response, read_error_body
from .settings import ClientSettings

_DEADLINE_WORDS = ("(the overall deadline: the request timeout plus time for the bytes at "
                   "a minimum rate); the server answers too slowly or holds the connection")


def preview(data: Any, limit: int = 200) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + "..."


def _connect_failure(what: str, url: str, failure: ConnectFailed,
                     settings: ClientSettings) -> AttemptFailed:
    reason = failure.reason
    if failure.kind == "tls":
        hint = (" (the CA bundle setting is used)" if settings.ca_bundle
                else "; set the CA bundle setting if the Manager uses its own certificate")
        return AttemptFailed(ServerUnreachable(
            f"{what}: the TLS connection to {url} failed: {reason}{hint}", url=url),
            AttemptPhase.FINAL, cause=failure)
    if failure.kind == "proxy":
        error = ServerUnreachable(
            f"{what}: the proxy for {url} failed: {reason} (proxy settings come from the "
            "HTTP(S)_PROXY / NO_PROXY environment variables)", url=url)
    elif failure.kind == "timeout":
        error = ServerTimeout(
            f"{what}: could not connect to {url} within {settings.connect_timeout:g} s (the "
            "connect timeout setting); is the Manager running and reachable?", url=url)
    elif failure.kind == "unresolved":
        error = ServerUnreachable(
            f"{what}: cannot reach {url}: the host name {urlsplit(url).hostname!r} could not "
            "be resolved; check the Shaman server URL setting", url=url)
    else:
        error = ServerUnreachable(
            f"{what}: cannot reach {url}: {reason}; is the Manager running, and is the URL "
            "right?", url=url)
    return AttemptFailed(error, AttemptPhase.CONNECT, cause=failure)


def network_failure(what: str, url: str, failure: TransportFailure,
                    settings: ClientSettings) -> AttemptFailed:
    """A call that got no usable answer."""
    if isinstance(failure, ConnectFailed):
        return _connect_failure(what, url, failure, settings)
    if isinstance(failure, DeadlinePassed):
        error: ServerUnreachable = ServerTimeout(
            f"{what}: {url} did not send a complete answer within "
            f"{round(failure.deadline_s, 1):g} s {_DEADLINE_WORDS}", url=url)
    elif failure.timed_out:
        error = ServerTimeout(
            f"{what}: {url} did not answer (or stopped reading) for "
            f"{settings.read_timeout:g} s (the read timeout setting)", url=url)
    else:
        error = ServerUnreachable(
            f"{what}: the connection to {url} dropped before an answer came "
            f"({failure.reason})", url=url)
    return AttemptFailed(error, AttemptPhase.SENT, cause=failure)


def upload_failure(what: str, url: str, failure: TransportFailure, sent: int, size: int,
                   settings: ClientSettings) -> AttemptFailed:
    """An upload that got no usable answer. Once the body was on its way the server may
    have stored it or not: the caller asks for the file's status before sending again."""
    if isinstance(failure, ConnectFailed):
        return _connect_failure(what, url, failure, settings)
    if isinstance(failure, DeadlinePassed):
        reason = f"not done within {round(failure.deadline_s, 1):g} s {_DEADLINE_WORDS}"
    elif failure.timed_out:
        reason = f"no progress for {settings.read_timeout:g} s, the read timeout setting"
    else:
        reason = failure.reason
    return AttemptFailed(UploadReset(
        f"{what}: the connection to {url} dropped after {sent} of {size} bytes ({reason}); "
        "ask the server for the file's status before sending it again", url=url),
        AttemptPhase.FINAL, cause=failure)


def status_failure(what: str, url: str, answer: Answer) -> AttemptFailed:
    """An answer with an error status, in the server's own words where it has any."""
    body = read_error_body(answer.body, answer.header("Content-Type"))
    error = error_from_response(what, url, answer.status, answer.reason, body)
    return AttemptFailed(error, AttemptPhase.STATUS, answer.status)


def json_object(what: str, url: str, answer: Answer) -> dict[str, Any]:
    """The answer's JSON object, or NotAShamanServer (some other web server answered)."""
    try:
        data = json.loads(answer.body)
    except RecursionError:
        raise AttemptFailed(NotAShamanServer(
            f"{what}: {url} answered with JSON nested deeper than any Flamenco Manager's "
            "answer; is this the Flamenco Manager's URL?", url=url, status=answer.status),
            AttemptPhase.FINAL) from None
    except ValueError:
        body = read_error_body(answer.body, answer.header("Content-Type"))
        raise AttemptFailed(NotAShamanServer(
            f"{what}: {url} answered {answer.status} with {body.describe()}, not JSON; is "
            "this the Flamenco Manager's URL?", url=url, status=answer.status),
            AttemptPhase.FINAL) from None
    if not isinstance(data, dict):
        raise AttemptFailed(NotAShamanServer(
            f"{what}: {url} answered with unexpected JSON {preview(data)}; is this the "
            "Flamenco Manager's URL?", url=url, status=answer.status), AttemptPhase.FINAL)
    return data
