"""Progress of a submission on stderr: a redrawn bar on a terminal, plain lines elsewhere.

A terminal only needs the newest snapshot; a log (stderr redirected, a farm job's
output) wants every phase change and a line every few seconds, never a carriage return.
"""

from __future__ import annotations

import queue
import shutil
import time
from typing import TextIO

from ..progress import Phase, ProgressEvent, drain

BAR_WIDTH = 20
LOG_EVERY_S = 2.0


class ProgressPrinter:
    """Shows ``ProgressEvent``s on ``stream``; silent when ``quiet``."""

    def __init__(self, stream: TextIO, *, tty: bool, quiet: bool) -> None:
        self.stream = stream
        self.tty = tty
        self.quiet = quiet
        self._phase: Phase | None = None
        self._last_line = 0.0
        self._drawn = False
        self.last_working_phase: Phase | None = None
        """The last phase before the end (UPLOADING: a failure came mid-upload)."""

    def consume(self, events: queue.SimpleQueue[ProgressEvent], budget_s: float) -> None:
        """Show what is queued: the newest snapshot on a terminal, each one in a log."""
        if self.tty or self.quiet:
            drain(events, self.show, budget_s=budget_s)
            return
        while True:
            try:
                self.show(events.get_nowait())
            except queue.Empty:
                return

    def show(self, event: ProgressEvent) -> None:
        if not event.phase.is_final:
            self.last_working_phase = event.phase
        if self.quiet:
            return
        if self.tty:
            self._draw(event)
            return
        if event.phase is Phase.UPLOADING and event.files_total == 0:
            return  # nothing to upload (yet): "Uploading 0/0 files" says nothing
        now = time.monotonic()
        if event.phase is not self._phase or now - self._last_line >= LOG_EVERY_S:
            self._phase = event.phase
            self._last_line = now
            print(f"[{event.fraction * 100:3.0f}%] {_status(event)}", file=self.stream,
                  flush=True)

    def _draw(self, event: ProgressEvent) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        filled = int(event.fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        text = f"[{bar}] {event.fraction * 100:3.0f}% {_status(event)}"
        text = text[: max(10, width - 1)].ljust(max(10, width - 1))
        self.stream.write("\r" + text)
        self._drawn = True
        if event.phase.is_final:
            self.stream.write("\n")
            self._drawn = False
        self.stream.flush()

    def close(self) -> None:
        """End a half-drawn bar's line, so what follows starts on a line of its own."""
        if self._drawn and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _status(event: ProgressEvent) -> str:
    """The progress line's words; a failure or cancel only names itself (its sentence
    follows once, as the command's last line)."""
    if event.phase in (Phase.FAILED, Phase.CANCELLED):
        return "Failed" if event.phase is Phase.FAILED else "Cancelled"
    return event.status_line()
