"""What a Manager offers for render jobs (``ManagerInfo``), and its cache per server.

The panel draws its Render job section from this on every redraw, so it must be there
without a network call: ``load_manager_info`` reads only the cache folder
(``managers/<hash of the URL>.json``, one file per server, replaced atomically so a
reader never sees half of one). ``fetch_manager_info`` asks the Manager (version,
configuration, job types with their etags, worker tags); a Refresh does it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotAShamanServer
from .types import JobSetting, JobType, parse_job_type

if TYPE_CHECKING:
    from .manager import ManagerClient

log = logging.getLogger(__name__)

CACHE_FOLDER = "managers"
CACHE_FORMAT = 1
MAX_TAGS = 1000


@dataclass(frozen=True)
class WorkerTag:
    id: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class ManagerInfo:
    """One Manager's job types and worker tags, as read at ``fetched_at`` (epoch s)."""

    url: str
    version: str
    shaman_enabled: bool
    job_types: tuple[JobType, ...] = field(default_factory=tuple)
    worker_tags: tuple[WorkerTag, ...] = field(default_factory=tuple)
    fetched_at: float = 0.0

    def job_type(self, name: str) -> JobType | None:
        for job_type in self.job_types:
            if job_type.name == name:
                return job_type
        return None

    def tag_id(self, name: str) -> str | None:
        for tag in self.worker_tags:
            if tag.name == name:
                return tag.id
        return None

    def with_job_type(self, job_type: JobType) -> ManagerInfo:
        """This info with ``job_type`` read again (a new etag), in its place."""
        types = [job_type if t.name == job_type.name else t for t in self.job_types]
        if job_type.name not in {t.name for t in self.job_types}:
            types.append(job_type)
        return replace(self, job_types=tuple(types))

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "url": self.url,
            "version": self.version,
            "shaman_enabled": self.shaman_enabled,
            "fetched_at": self.fetched_at,
            "job_types": [job_type_json(t) for t in self.job_types],
            "worker_tags": [{"id": t.id, "name": t.name, "description": t.description}
                            for t in self.worker_tags],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ManagerInfo:
        """ValueError when ``doc`` is not a cache file of this format."""
        if doc.get("format") != CACHE_FORMAT or not isinstance(doc.get("url"), str):
            raise ValueError("not a Manager info cache file of this format")
        try:
            types = tuple(parse_job_type(t, url=doc["url"]) for t in doc["job_types"])
            tags = parse_worker_tags({"tags": doc["worker_tags"]}, url=doc["url"])
        except NotAShamanServer as exc:
            raise ValueError(str(exc)) from exc
        return cls(url=doc["url"], version=str(doc.get("version", "")),
                   shaman_enabled=doc.get("shaman_enabled") is True, job_types=types,
                   worker_tags=tags, fetched_at=float(doc.get("fetched_at", 0.0)))


def _setting_json(s: JobSetting) -> dict[str, Any]:
    """A setting in the Manager's own JSON form (what ``parse_setting`` reads)."""
    doc: dict[str, Any] = {"key": s.key, "type": s.type.value}
    optional = {
        "subtype": s.subtype.value, "choices": list(s.choices), "label": s.label,
        "description": s.description, "eval": s.eval,
    }
    doc.update({k: v for k, v in optional.items() if v})
    propargs = {k: v for k, v in (("min", s.minimum), ("max", s.maximum)) if v is not None}
    if propargs:
        doc["propargs"] = propargs
    if s.default is not None:
        doc["default"] = s.default
    if s.eval_description or s.show_link_button:
        doc["evalInfo"] = {"description": s.eval_description,
                           "showLinkButton": s.show_link_button}
    doc.update(required=s.required, editable=s.editable, visible=s.visible.value)
    return doc


def job_type_json(job_type: JobType) -> dict[str, Any]:
    """A job type in the Manager's JSON form: ``parse_job_type`` gives it back equal."""
    return {"name": job_type.name, "label": job_type.label, "etag": job_type.etag,
            "description": job_type.description,
            "settings": [_setting_json(s) for s in job_type.settings]}


def parse_worker_tags(doc: Any, *, url: str) -> tuple[WorkerTag, ...]:
    """``GET /api/v3/worker-mgt/tags``: ``{"tags": [{"id", "name", "description"}]}``."""
    items = doc.get("tags") if isinstance(doc, Mapping) else None
    if not isinstance(items, list) or len(items) > MAX_TAGS:
        raise NotAShamanServer(f"{url} answered without a usable list of worker tags.",
                               url=url)
    tags = []
    for item in items:
        if (isinstance(item, Mapping) and isinstance(item.get("id"), str)
                and isinstance(item.get("name"), str)):
            description = item.get("description")
            tags.append(WorkerTag(id=item["id"][:200], name=item["name"][:200],
                                  description=description[:4000]
                                  if isinstance(description, str) else ""))
    return tuple(tags)


# -- the cache ------------------------------------------------------------------------


def cache_file(url: str, cache_dir: Path) -> Path:
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
    return Path(cache_dir) / CACHE_FOLDER / f"{digest}.json"


def load_manager_info(url: str, cache_dir: Path) -> ManagerInfo | None:
    """The cached info of the Manager at ``url`` (normalised), or None: no network."""
    path = cache_file(url, cache_dir)
    try:
        info = ManagerInfo.from_json(json.loads(path.read_text("utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("ignoring the unreadable Manager info cache %s: %s", path, exc)
        return None
    return info if info.url == url else None


def save_manager_info(info: ManagerInfo, cache_dir: Path) -> Path:
    """Write ``info`` to its cache file, replacing it atomically."""
    path = cache_file(info.url, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info.to_json(), fh, ensure_ascii=False, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def fetch_manager_info(client: ManagerClient, *,
                       clock: Callable[[], float] = time.time) -> ManagerInfo:
    """Ask the Manager: version (ManagerTooOld below 3.x or without a job API),
    configuration, job types, worker tags."""
    version = client.version()
    configuration = client.configuration()
    return ManagerInfo(url=client.base_url, version=version.version,
                       shaman_enabled=configuration.shaman_enabled,
                       job_types=client.job_types(), worker_tags=client.worker_tags(),
                       fetched_at=clock())


def refresh_job_type(client: ManagerClient, name: str, cache_dir: Path | None) -> JobType:
    """Read job type ``name`` again and, when there is a cache, put it in the cache."""
    job_type = client.job_type(name)
    if cache_dir is not None:
        cached = load_manager_info(client.base_url, cache_dir)
        if cached is not None:
            try:
                save_manager_info(cached.with_job_type(job_type), cache_dir)
            except OSError as exc:
                log.warning("could not update the Manager info cache: %s", exc)
    return job_type
