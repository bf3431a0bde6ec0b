"""Text that came from outside (a server's words, a path stored in a .blend) made safe
to put in a message, a log line or the history.

Such text can hold terminal escape sequences, newlines that forge extra lines, bidi
overrides that reorder what is shown, or megabytes. ``shown`` is THE helper for it: it
keeps at most ``limit`` characters and escapes every control character, so what reaches
a terminal is one line of printable text and says how much was left out.
"""

from __future__ import annotations

import re

QUOTE_LIMIT = 200
"""Characters of untrusted text kept in one message."""

# C0/C1 controls and DEL; line and paragraph separators; bidi marks, embeddings,
# overrides and isolates; lone surrogates (undecodable bytes of a file name).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: object, limit: int = QUOTE_LIMIT) -> str:
    """``text`` as one printable line: control characters escaped (``\\x1b``, ``\\n``
    as ``\\x0a``...), cut to ``limit`` characters with the number left out said."""
    value = text if isinstance(text, str) else str(text)
    extra = len(value) - limit
    if extra > 0:
        value = value[:limit]
    value = _UNSAFE.sub(_escape, value)
    return value if extra <= 0 else f"{value}... ({extra:,} more characters)"


def quoted(text: object, limit: int = QUOTE_LIMIT) -> str:
    """``shown(text)`` between single quotes, for the middle of a sentence."""
    return f"'{shown(text, limit)}'"
