"""What a person asks the farm to do with a submission, and what the Manager made of it.

``JobRequest`` is complete before the submission starts: the job type (with the etag it
was read with), the job's name, and every setting's value already evaluated (in Blender
against the scene the artist sees, on the command line from the .blend or ``--set``),
except ``blendfile``, which only the checkout decides. The submission checks it with the
Manager before uploading and submits it after the checkout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .types import JobType

DEFAULT_PRIORITY = 50
MIN_PRIORITY = 1
MAX_PRIORITY = 100


@dataclass(frozen=True)
class JobRequest:
    """One render job to submit for the checkout (or for the file in shared storage)."""

    job_type: JobType
    name: str
    settings: Mapping[str, Any]
    """Every setting's value but ``blendfile``, typed as the job type says."""
    priority: int = DEFAULT_PRIORITY
    worker_tag: str = ""
    """The worker tag's NAME ('' for any worker); its id is looked up on the Manager."""
    paused: bool = False
    """Submit with ``initial_status: paused``."""
    submitter_platform: str = "linux"
    """'linux', 'windows' or 'darwin': how the Manager translates paths for this job."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """user.name, the blend file, the project, this extension's version..."""


@dataclass(frozen=True)
class SubmittedJob:
    """The job as the Manager accepted it."""

    id: str
    name: str
    status: str
    type: str
    url: str
    """Its page in the Manager's web app: ``<server>/app/jobs/<id>``."""
    checkout_path: str | None
    """The checkout it renders from (None: a file in shared storage)."""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status, "type": self.type,
                "url": self.url, "checkout_path": self.checkout_path}
