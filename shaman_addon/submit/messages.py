"""The messages the collecting and hashing threads send to the submission's main thread.

One inbox, typed messages: the main thread is the only one that decides what to ask the
server and what to upload, so the stages never call each other; they report here.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass

from ..collect.plan import PackPlan, PlanFile
from .checksums import FileStat
from .contents import Entry


@dataclass(frozen=True, slots=True)
class FilesFound:
    """Dependencies the collector placed, each with its stat and its cached checksum
    (both taken on the collector's thread, one cache query per batch): three lists of
    one length, not an object per file (a 100,000-file shot sends 100,000)."""

    files: list[PlanFile]
    stats: list[FileStat]
    cached_shas: list[str | None]


@dataclass(frozen=True, slots=True)
class PlanReady:
    """The collector is done: the plan holds every file (the .blend files too)."""

    plan: PackPlan


@dataclass(frozen=True, slots=True)
class HashResult:
    entry: Entry
    stat: FileStat  # as the file was while it was read
    sha: str


@dataclass(frozen=True, slots=True)
class HashesReady:
    """Checksums are waiting in the hashing stage: ``HashStage.take`` them (one message
    for however many finished meanwhile)."""


@dataclass(frozen=True, slots=True)
class StageFailed:
    """A stage's thread ended with an error; the main thread raises it."""

    stage: str
    error: BaseException


Message = FilesFound | PlanReady | HashesReady | StageFailed
Inbox = queue.SimpleQueue[Message]
