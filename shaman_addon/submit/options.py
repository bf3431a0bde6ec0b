"""What a submission needs besides the .blend, filled the same way by every caller.

``SubmitOptions`` comes from the command line's flags or Blender's preferences (through
``app.settings``); ``Tuning`` holds the bounds and thresholds of the pipeline, so a test
reaches a case quickly by passing other values instead of patching module constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..shaman.settings import ClientSettings
from .checkout_name import DEFAULT_TEMPLATE

if TYPE_CHECKING:
    from ..jobs.request import JobRequest


@dataclass(frozen=True)
class Tuning:
    """The pipeline's bounds and thresholds; the defaults are what users run."""

    hash_first_bytes: int = 64 << 20
    """When no more than this is left to hash (say, only rewritten .blend copies), hash
    it all first and ask about everything in ONE requirements call: overlapping the
    calls with hashing saves nothing then, and costs round trips."""
    defer_delays_s: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
    """Back-off after each 425 of one file within a round; after the last, the file waits
    for the next requirements round (which also tells whether the other upload
    finished)."""
    max_rounds: int = 5
    """Requirements rounds after the first uploads before giving up on files the server
    never reports as stored."""
    max_wait_rounds: int = 60
    """Rounds in which the only files left are being uploaded by someone else; past half
    of them, this client sends those files itself (the other one may be stuck)."""
    max_resets_per_file: int = 5
    """Dropped connections one file's upload may meet before the submission fails."""
    max_unsettled_per_file: int = 3
    max_unsettled: int = 50
    """Uploads answered 208 (already stored) while the file's status then says it is not,
    per file and per submission, before the submission fails (UploadNeverSettles)."""
    max_name_attempts: int = 10
    """Checkout names tried (the template's, then with a random suffix) when taken."""
    batch_files: int = 1000
    batch_bytes: int = 128 << 20
    batch_seconds: float = 0.5
    """A requirements batch is sent once it holds this many files or bytes, or is this
    old (the first batch goes at once, so uploads start early). Measured against the
    local server (``benchmarks/bench_batches.py``): a call costs about 1.5 ms plus 28 µs
    a file, and 1,000 files queue 0.5-0.9 s of uploads, so a 100,000-file shot makes a
    quarter to half fewer calls than at 500 without the uploads waiting; bigger batches
    are rarely filled before the age and running-low rules send them, and their answers
    cost more per file. It does not scale with the shot: the work per file does."""
    low_water_per_job: int = 2
    """Ask about the checksums gathered so far as soon as the upload threads have fewer
    than this many files each left: waiting for a full batch left them idle (measured:
    no upload between the first batch at 0.09 s and the second at 0.47 s of a cold
    run)."""
    low_water_min_files: int = 32
    low_water_min_seconds: float = 0.05
    """A batch asked about early holds at least this many files or waited this long."""
    stream_batch: int = 64
    stream_batch_max: int = 4096
    """Files the collector hands over at a time: the first batch holds ``stream_batch``,
    each next one twice as many, up to ``stream_batch_max``. Waking the main thread for
    each file would fight the collector for the GIL; small first batches start hashing
    at once, large later ones keep an unchanged 100,000-file shot to a few dozen
    messages and checksum-cache queries."""
    lane_ahead_requests: int = 128
    lane_ahead_bytes: int = 4 << 20
    """How far a pipelined lane writes ahead of the answers it has read: enough requests
    and bytes in flight to cover a high-latency link's round trip (30 ms at 100 Mbit/s
    holds 375 kB), small enough that the server's answers to them always fit its
    socket buffer."""


@dataclass
class SubmitOptions:
    """Everything a submission needs besides the .blend."""

    server_url: str
    checkout_template: str = DEFAULT_TEMPLATE
    project_root: Path | None = None
    jobs: int = 4
    dry_run: bool = False
    fail_on_missing: bool = False
    allow_credential_files: bool = False
    """Send dependencies found in credential stores (``~/.ssh``...) instead of refusing."""
    cache_dir: Path | None = None
    as_name: str | None = None
    """Submit the .blend as if it had this name (a temporary copy of unsaved work)."""
    client_settings: ClientSettings = field(default_factory=ClientSettings)
    app_info: dict[str, str] = field(default_factory=dict)
    """Who submits: recorded in the history (interface, Blender version...)."""
    tuning: Tuning = field(default_factory=Tuning)
    job: JobRequest | None = None
    """The render job to check before uploading and submit after the checkout (None:
    checkout only). Filled by ``app.settings.submit_options`` from ``Run.job``."""
