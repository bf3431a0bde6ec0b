"""Sizes, rates, counts and durations as a person reads them: one style everywhere.

The command line, the Blender panel, the progress lines and the logs all format through
these functions, so a number reads the same wherever it appears.

Decimal units (1 MB = 1,000,000 bytes, 1 GB = 1,000 MB): link speeds are quoted in
decimal (a "1 Gbit/s" studio LAN carries 125 MB/s), so a transfer rate and the link it
runs on compare without conversion; the README, the benchmark tables and the file
managers artists use on macOS and most Linux desktops count the same way. A value never
carries more than one decimal: the display is for reading, exact byte counts are in the
JSON output and the history.

Durations are written with a space between number and unit and at most two units
(``42 s``, ``2 min 05 s``, ``1 h 02 min``), like the sizes (``1.5 MB``).
"""

from __future__ import annotations

import math

_UNITS = ("B", "kB", "MB", "GB", "TB")
_STEP = 1000.0


def _scale(nbytes: float) -> int:
    """Index in ``_UNITS`` of the unit ``nbytes`` is written in (below 1000 of it)."""
    value, index = abs(float(nbytes)), 0
    while value >= _STEP and index < len(_UNITS) - 1:
        value /= _STEP
        index += 1
    return index


def _in_unit(nbytes: float, index: int) -> str:
    if index == 0:
        return f"{int(nbytes)}"
    return f"{nbytes / _STEP**index:,.1f}"


def format_bytes(nbytes: float) -> str:
    """``0 B``, ``999 B``, ``1.2 MB``, ``3.2 TB``."""
    index = _scale(nbytes)
    return f"{_in_unit(nbytes, index)} {_UNITS[index]}"


def format_bytes_of(done: float, total: float) -> str:
    """Progress through a total, in the total's unit: ``212.4/503.1 MB``."""
    index = _scale(total)
    return f"{_in_unit(done, index)}/{_in_unit(total, index)} {_UNITS[index]}"


def format_rate(bytes_per_s: float) -> str:
    """``2.5 MB/s``; '' while no rate is known (zero, negative or not a number)."""
    if not bytes_per_s > 0 or math.isinf(bytes_per_s):
        return ""
    return f"{format_bytes(bytes_per_s)}/s"


def format_count(n: int) -> str:
    """A count of files with thousands separators: ``1,204``."""
    return f"{int(n):,}"


def format_files(n: int, nbytes: float) -> str:
    """``3 files, 2.0 MB`` (``1 file, ...`` for one)."""
    noun = "file" if n == 1 else "files"
    return f"{format_count(n)} {noun}, {format_bytes(nbytes)}"


def format_duration(seconds: float | None) -> str:
    """``42 s``, ``2 min 05 s``, ``1 h 02 min``; '' when unknown (None, negative, NaN)."""
    if seconds is None or not seconds >= 0 or math.isinf(seconds):
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes} min {s:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
