"""Names on the wire: the Manager's base URL as the client keeps it, a URL safe to log, and
the upload's file-name header."""

from __future__ import annotations

import base64
import os
import re
from urllib.parse import urlsplit

from ..errors import ConfigError

MAX_FILENAME_BYTES = 255  # of the X-Shaman-Original-Filename value, before encoding
_USERINFO_RE = re.compile(r"^([^/?#@]*//)?[^/?#@]*@")


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` part replaced by ``***@``: safe to log or keep."""
    return _USERINFO_RE.sub(lambda m: (m.group(1) or "") + "***@", (url or "").strip(), count=1)


def normalise_base_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash, or ConfigError."""
    text = (url or "").strip()
    if redact_url(text) != text:
        raise ConfigError(
            f"The Shaman server URL {redact_url(text)!r} contains a user name or password; a "
            "Flamenco Manager asks for neither, and a password there would end up in logs and "
            "error messages. Remove the part before '@'."
        )
    if not text:
        raise ConfigError(
            "The Shaman server URL setting is empty; enter the Flamenco Manager's address, "
            "for example http://flamenco-manager:8080"
        )
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        bare, scheme_guess = rest if sep else text, "http"
        for typo in ("https//", "http//", "https:/", "http:/", "https:", "http:"):
            if not sep and bare.lower().startswith(typo):
                # 'http//host' means http://host, not http://http//host
                bare, scheme_guess = bare[len(typo):], typo.rstrip(":/")
                break
        guess = f"{scheme_guess}://{bare}".rstrip("/")
        raise ConfigError(
            f"The Shaman server URL {text!r} must start with http:// or https:// "
            f"(did you mean {guess!r}?)"
        )
    normalised = f"{scheme.lower()}://{rest}".rstrip("/")
    try:
        parts = urlsplit(normalised)
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        raise ConfigError(f"The Shaman server URL {text!r} is not a valid URL: {exc}") from exc
    if not parts.hostname:
        raise ConfigError(f"The Shaman server URL {text!r} has no host name")
    if parts.query or parts.fragment:
        raise ConfigError(f"The Shaman server URL {text!r} must not contain '?' or '#'")
    return normalised


def original_filename_header(name: str) -> str:
    """The ``X-Shaman-Original-Filename`` value: printable ASCII as is, anything else as
    ONE RFC 2047 UTF-8 encoded-word. Never folded; long names are cut before encoding."""
    name = os.path.basename(name.replace("\\", "/")) or name
    if name.isascii() and name.isprintable() and "=?" not in name:
        return name[:MAX_FILENAME_BYTES]
    raw = name.encode("utf-8", "replace")[:MAX_FILENAME_BYTES]
    raw = raw.decode("utf-8", "ignore").encode("utf-8")  # drop a cut multi-byte tail
    return f"=?utf-8?b?{base64.b64encode(raw).decode('ascii')}?="
