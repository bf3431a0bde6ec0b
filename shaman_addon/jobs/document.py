"""The JSON job document the Manager checks (``/jobs/check``) and submits (``/jobs``).

One function makes it, so the check and the submission send the same document but for
the checkout path the server returned. Its fields are the ones a real Manager 3.9 was
sent and accepted (see the recorded jobs transcript): ``name``, ``type``, ``type_etag``,
``priority``, ``submitter_platform``, ``settings`` (with ``blendfile``), ``metadata``,
``storage.shaman_checkout_id`` (so deleting the job deletes its checkout), and, only
when asked for, ``initial_status: paused`` and ``worker_tag`` (the tag's id).
"""

from __future__ import annotations

from typing import Any

from .request import JobRequest

JOBS_VARIABLE = "{jobs}"
"""The Manager's variable for its jobs folder, where Shaman checkouts are made."""


def checkout_blendfile(checkout_path: str, blend_checkout_path: str) -> str:
    """``blendfile`` for a .blend at ``blend_checkout_path`` in checkout ``checkout_path``:
    ``{jobs}/<checkout path>/<the blend's path in the checkout>``."""
    return f"{JOBS_VARIABLE}/{checkout_path.strip('/')}/{blend_checkout_path.lstrip('/')}"


def job_document(request: JobRequest, *, blendfile: str, checkout_path: str | None,
                 worker_tag_id: str | None = None) -> dict[str, Any]:
    """The document for ``request`` rendering ``blendfile``. ``checkout_path`` None: a file
    in shared storage (no Shaman checkout to delete with the job)."""
    given = {k: v for k, v in request.settings.items() if k != "blendfile"}
    settings: dict[str, Any] = {}
    for setting in request.job_type.settings:  # the job type's order, as the Manager's
        if setting.key == "blendfile":
            settings["blendfile"] = blendfile
        elif setting.key in given:
            settings[setting.key] = given.pop(setting.key)
    settings.update(given)
    settings["blendfile"] = blendfile
    doc: dict[str, Any] = {
        "name": request.name,
        "type": request.job_type.name,
        "type_etag": request.job_type.etag,
        "priority": request.priority,
        "submitter_platform": request.submitter_platform,
        "settings": settings,
        "metadata": {str(k): str(v) for k, v in request.metadata.items()},
        "storage": {"shaman_checkout_id": checkout_path} if checkout_path else {},
    }
    if request.paused:
        doc["initial_status"] = "paused"
    if worker_tag_id:
        doc["worker_tag"] = worker_tag_id
    return doc
