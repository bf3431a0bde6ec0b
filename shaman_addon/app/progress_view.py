"""What a person sees of a ``ProgressEvent``: the one declaration of the progress UI.

``ProgressEvent`` (in ``progress``) is what the pipeline reports; ``ProgressView`` is the
same snapshot as display values (texts and a 0..1 fraction). The Blender property group
builds its progress properties from these fields and their metadata (the keyword
arguments of the bpy property), so the two cannot drift apart; the headless path and the
tests hold a plain ``ProgressView``. Blender's background mode has no event loop, so the
per-tick work (``tick``) is a plain function here too, tested with an injected clock.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from ..progress import Phase, ProgressEvent, drain
from ..units import format_bytes_of, format_count, format_duration, format_rate

DEFAULT_TICK_BUDGET_S = 0.004
"""How long one modal tick may spend applying progress: far below a frame."""


@dataclass
class ProgressView:
    """A progress snapshot as display values.

    Byte counts are text: Blender's IntProperty is 32-bit and a production is often
    larger than 2 GB. The metadata of each field is the keyword arguments of its bpy
    property.
    """

    phase: str = field(default="", metadata={"name": "Phase"})
    fraction: float = field(
        default=0.0, metadata={"name": "Progress", "min": 0.0, "max": 1.0, "subtype": "FACTOR"}
    )
    files_done: int = field(default=0, metadata={"name": "Files done", "min": 0})
    files_total: int = field(default=0, metadata={"name": "Files", "min": 0})
    bytes_text: str = ""
    current_file: str = ""
    bar_text: str = ""
    status_line: str = ""
    message: str = ""

    @classmethod
    def of(cls, event: ProgressEvent) -> ProgressView:
        """The view of ``event``: the bar's text, the status line and the counters."""
        if event.phase in (Phase.HASHING, Phase.COLLECTING):
            done, total = event.hash_bytes_done, event.hash_bytes_total
        else:
            done, total = event.upload_bytes_done, event.upload_bytes_total
        bytes_text = format_bytes_of(done, total) if total else ""
        speed, eta = format_rate(event.speed_bps), format_duration(event.eta_s)
        parts = [event.phase.value.capitalize()]
        if event.files_total:
            parts.append(
                f"{format_count(event.files_done)}/{format_count(event.files_total)} files"
            )
        parts += [text for text in (bytes_text, speed) if text]
        if eta:
            parts.append(f"ETA {eta}")
        return cls(
            phase=event.phase.value,
            fraction=min(max(float(event.fraction), 0.0), 1.0),
            files_done=int(event.files_done),
            files_total=int(event.files_total),
            bytes_text=bytes_text,
            current_file=event.current_file,
            bar_text=" · ".join(parts),
            status_line=event.status_line(),
            message=event.message,
        )

    def apply_to(self, target: Any) -> None:
        """Copy every field onto ``target`` (the property group, or another view)."""
        for f in fields(self):
            setattr(target, f.name, getattr(self, f.name))


def tick(
    events: queue.SimpleQueue[ProgressEvent],
    target: Any,
    *,
    budget_s: float = DEFAULT_TICK_BUDGET_S,
    clock: Callable[[], float] = time.perf_counter,
) -> ProgressEvent | None:
    """Everything ``modal()`` does with progress per timer tick; the event applied, if any.

    Drains the queue within ``budget_s`` and copies only the newest snapshot's view onto
    ``target``: each event is a full snapshot, so skipping older ones loses nothing.
    """
    return drain(
        events, lambda ev: ProgressView.of(ev).apply_to(target), budget_s=budget_s, clock=clock
    )
