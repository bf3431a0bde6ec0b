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
