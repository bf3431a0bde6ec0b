"""The "Check server" answer: one attempt at each of two calls, in plain words, never an
exception for server trouble (the button shows the message)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import NotAShamanServer, ServerUnreachable, ShamanDisabled, ShamanError
from .protocol import EMPTY_SHA, ServerCheck

if TYPE_CHECKING:
    from .client import ShamanClient


def shaman_off(base_url: str) -> str:
    return (
        f"The Flamenco Manager at {base_url} runs without Shaman; enable it in "
        "flamenco-manager.yaml (shaman: enabled: true) and restart the Manager."
    )


def check_server(probe: ShamanClient, base_url: str) -> ServerCheck:
    """Ask ``probe`` (a client that tries once) for the configuration, then for a file's
    status: a Manager can claim Shaman is on while its Shaman API answers 503."""
    try:
        config = probe.configuration()
    except ServerUnreachable as exc:
        return ServerCheck(False, False, False, False, str(exc))
    except ShamanError as exc:  # NotAShamanServer and any other answer
        return ServerCheck(False, True, False, False, str(exc))
    if not config.shaman_enabled:
        return ServerCheck(False, True, True, False, shaman_off(base_url))
    try:
        probe.file_status(EMPTY_SHA, 0)
    except ShamanDisabled:
        return ServerCheck(False, True, True, False, shaman_off(base_url))
    except ServerUnreachable as exc:
        return ServerCheck(False, False, True, True, str(exc))
    except NotAShamanServer as exc:
        return ServerCheck(False, True, True, False,
                           f"The Manager answers, but its Shaman API does not: {exc}")
    except ShamanError as exc:
        return ServerCheck(False, True, True, True, str(exc))
    return ServerCheck(
        True, True, True, True,
        f"Connected: the Flamenco Manager at {base_url} has Shaman enabled "
        f"(storage: {config.storage_location or 'unknown'}).",
    )
