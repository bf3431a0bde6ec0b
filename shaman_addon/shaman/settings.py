"""The client's settings: timeouts, retries, TLS, and how uploads are sent."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class ClientSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 4  # per call, for retryable failures
    backoff_s: float = 0.25  # first back-off, doubled each time, capped
    verify_tls: bool = True
    ca_bundle: str | None = None
    pool_size: int = 8  # >= parallel uploads
    chunk_size: int = DEFAULT_CHUNK_SIZE  # upload chunk: progress/cancel granularity
    # Pipelined plain-http connections (``ShamanClient.lanes``) that small uploads share.
    upload_connections: int = 1
    # False: every upload goes through ``requests``, even where pipelining would apply.
    pipelining: bool = True
    # A pipelined connection that gets no answer for this long (or read_timeout, if
    # shorter) hands its uploads to the ordinary ones: the requests behind one slow
    # answer would otherwise all wait for it (head-of-line blocking).
    lane_read_timeout: float = 5.0
    # The overall deadline of every call (connect, request and the whole answer) is the
    # connect and read timeouts plus time for its bytes at this many bytes per second:
    # a slow but working link (a big upload over 0.5 Mbit/s) is never cut, while a
    # server that drips an answer a byte at a time is. Per-read timeouts alone never
    # end a call that gets a byte every few seconds.
    min_rate: int = 64 * 1024

    def deadline_for(self, nbytes: int) -> float:
        """The overall deadline of a call that moves ``nbytes`` (request and answer)."""
        return self.connect_timeout + self.read_timeout + max(0, nbytes) / max(1, self.min_rate)
