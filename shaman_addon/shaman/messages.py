"""What both ways of sending exchange: an upload request built once, and an answer.

Why typed and shared: the ``requests`` transport and the pipelined connection must send
the same bytes for the same upload and be judged by the same code afterwards. Each turns
its own objects into these at its boundary, so retries, status handling and messages
never see which way a request went.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class UploadRequest:
    """One upload's request line and headers. ``target`` is the path sent in the request
    line (``/prefix/api/v3/shaman/files/<sha>/<size>``), ``url`` the full URL (for
    messages and for ``requests``). ``headers`` are sent in this order after ``Host``."""

    target: str
    url: str
    headers: dict[str, str]

    def head(self, host_header: str) -> bytes:
        """The request line and headers as ``http.client`` writes them: ``Host`` first,
        then ``headers`` in order. Names and values come from the client, not from users
        (the file name is already an ASCII encoded-word)."""
        lines = [f"POST {self.target} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        lines += ["", ""]
        return "\r\n".join(lines).encode("latin-1")


@dataclass
class Answer:
    """One complete HTTP answer. ``will_close``: the server will not read another request
    on that connection (``Connection: close``, HTTP/1.0, or a body that ended with the
    connection)."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    will_close: bool = False
    truncated: bool = False
    """The body was longer than the caller's size cap; ``body`` holds its first bytes."""

    def header(self, name: str, default: str = "") -> str:
        """The first value of header ``name`` (any letter case)."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default


def host_header(host: str, port: int, default_port: int = 80) -> str:
    """What ``http.client`` puts in the ``Host`` header: IPv6 in brackets, the port only
    when it is not the scheme's default."""
    name = f"[{host}]" if ":" in host else host
    return name if port == default_port else f"{name}:{port}"
