"""The job API of a Flamenco Manager, answered as a real one (3.9) answers it.

The local test server (``shaman_server.py``) routes these endpoints here; this module
holds the Manager's state (job types, worker tags, jobs) and decides every answer. The
reference is ``data/real-manager-jobs-transcript.json`` (``test_manager_jobs.py`` replays
it): statuses and body shapes as recorded, including where the real Manager differs from
its API description:

- ``POST /api/v3/jobs/check`` answers 204 (no body);
- the Manager does not check ``required`` settings nor setting types: the job type's
  script does what it does with them (a missing ``frames`` is the frame chunker's
  ``invalid range ""`` compile error, 400; ``chunk_size`` given as a string is fine; so
  is priority 1000);
- an unknown ``worker_tag`` id passes the check and makes ``POST /api/v3/jobs`` a 500
  "error persisting job in database";
- the returned job shows ``submitter_platform`` as "".

Endpoints (names as counted in ``server.counters.requests`` and usable with
``server.faults.fail_next(name)`` and the other faults)::

    version          GET  /api/v3/version
    variables        GET  /api/v3/configuration/variables/{audience}/{platform}
    shared_storage   GET  /api/v3/configuration/shared-storage/{audience}/{platform}
    job_types        GET  /api/v3/jobs/types
    job_type         GET  /api/v3/jobs/type/{name}
    worker_tags      GET, POST /api/v3/worker-mgt/tags
    jobs_check       POST /api/v3/jobs/check
    jobs_submit      POST /api/v3/jobs
    job              GET  /api/v3/jobs/{id}
    job_tasks        GET  /api/v3/jobs/{id}/tasks
    job_delete_info  GET  /api/v3/jobs/{id}/what-would-delete-do

(``GET /api/v3/configuration`` stays the Shaman server's own ``configuration``.)

What a test reads and changes, on ``server.jobs`` (a ``ManagerJobs``) unless noted:

- ``server.counters.job_checks`` / ``server.counters.job_submissions``: every JSON
  document received by ``/jobs/check`` / ``/jobs``, in order (refused ones too);
  reset with the other counters. Over HTTP: ``GET /test/counters``.
- ``bump_etag(name) -> str``: the job type is edited on the Manager: a new etag, so a
  request with the old one answers 412.
- ``stale_etags = True``: every check and submission answers 412 (a job type that keeps
  changing: "stale etag twice").
- ``too_old = True``: a Manager before this job API: every endpoint above answers 404
  ``{"message": "Not Found"}`` (Shaman and ``/api/v3/configuration`` still answer).
- Shaman disabled is the server's ``faults.shaman_disabled``: the configuration and the
  shared storage say ``shamanEnabled: false`` with the storage folder itself as the
  location (and ``{jobs}``), the Shaman endpoints answer 503.
- ``add_job_type(doc)``: serve another job type (no script: it compiles to no tasks);
  ``add_worker_tag(name, description)``: a tag as ``POST /worker-mgt/tags`` makes it;
  ``jobs``: the stored jobs as the Manager returns them; ``clock``: nanoseconds since the
  epoch, for ``created`` and the ``{timestamp}`` of ``render_output_path``.
- ``reset_knobs()`` (also done by ``POST /test/reset``): ``stale_etags`` and ``too_old``
  off. Over HTTP, ``POST /test/fault`` takes ``{"call": "bump_etag", "kwargs": {"name":
  ...}}``, ``"stale_etags"`` / ``"too_old"`` with ``{"value": bool}``.

Not recorded, so modelled on what the Manager's code does as far as known: a frame range
that runs backwards, a ``chunk_size`` that is not a number, a missing
``render_output_path``, a duplicate worker tag name (500), an unknown audience (400),
an unknown worker tag on ``/jobs/check`` (204: only storing the job looks the tag up),
the tasks of a paused job (``queued``, like a queued job's), echo-sleep-test's tasks.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

JOB_ENDPOINTS = ("version", "variables", "shared_storage", "job_types", "job_type",
                 "worker_tags", "jobs_check", "jobs_submit", "job", "job_tasks",
                 "job_delete_info")
STOCK_JOB_TYPES = Path(__file__).resolve().parent / "data" / "stock_job_types.json"
VERSION = {"git": "cf286e71", "name": "Flamenco Reference", "shortversion": "3.9-beta1",
           "version": "3.9-beta1 (cf286e71)"}

_UUID = "[0-9a-fA-F-]{1,64}"
_ROUTES: tuple[tuple[re.Pattern[str], tuple[str, ...], str], ...] = tuple(
    (re.compile(pattern), methods, name) for pattern, methods, name in (
        (r"/api/v3/version", ("GET",), "version"),
        (r"/api/v3/configuration/variables/([^/]+)/([^/]+)", ("GET",), "variables"),
        (r"/api/v3/configuration/shared-storage/([^/]+)/([^/]+)", ("GET",), "shared_storage"),
        (r"/api/v3/jobs/types", ("GET",), "job_types"),
        (r"/api/v3/jobs/type/([^/]+)", ("GET",), "job_type"),
        (r"/api/v3/worker-mgt/tags", ("GET", "POST"), "worker_tags"),
        (r"/api/v3/jobs/check", ("POST",), "jobs_check"),
        (r"/api/v3/jobs", ("POST",), "jobs_submit"),
        (rf"/api/v3/jobs/({_UUID})", ("GET",), "job"),
        (rf"/api/v3/jobs/({_UUID})/tasks", ("GET",), "job_tasks"),
        (rf"/api/v3/jobs/({_UUID})/what-would-delete-do", ("GET",), "job_delete_info"),
    ))

_STALE = "rejecting job because its settings are outdated, refresh the job type"
_CHUNKER = (" at projects.blender.org/studio/flamenco/internal/manager/"
            "job_compilers.jsFrameChunker (native)")
_VIDEO_FORMATS = ("FFMPEG", "AVI_RAW", "AVI_JPEG")
_NO_FFMPEG_FORMATS = ("EXR", "MULTILAYER", "OPEN_EXR", "OPEN_EXR_MULTILAYER")
_JOB_STATUSES = ("active", "canceled", "completed", "failed", "paused", "queued",
                 "cancel-requested", "requeueing", "under-construction", "pause-requested")
_VALIDATION = "request body has an error: doesn't match schema #/components/schemas/"

Answer = tuple[int, Any]
"""(status, JSON document or None for an empty body)."""


def route(method: str, path: str) -> tuple[str, tuple[str, ...]] | None:
    """The endpoint name and its path parameters, or None when the path is not one of
    the job API's; a known path asked with another method is ``("", ())`` (405)."""
    for pattern, methods, name in _ROUTES:
        match = pattern.fullmatch(path)
        if match:
            return (name, match.groups()) if method in methods else ("", ())
    return None


def load_stock_job_types() -> list[dict[str, Any]]:
    """The two stock job types, as the real Manager serves them."""
    doc = json.loads(STOCK_JOB_TYPES.read_text(encoding="utf-8"))
    return list(doc["job_types"])


def _error(status: int, message: str) -> Answer:
    return status, {"code": status, "message": message}


def _validation(schema: str, problem: str) -> Answer:
    return 400, {"message": f"{_VALIDATION}{schema}: {problem}"}


def _go_value(value: Any) -> Any:
    """Numbers as Go's encoder writes a float64 that holds an integer (24.0 -> 24)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, dict):
        return {k: _go_value(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_go_value(v) for v in value]
    return value


def _rfc3339(ns: int) -> str:
    seconds, frac = divmod(ns, 10**9)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{frac:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def submitted_job_problem(doc: Any) -> str:
    """The first schema violation of a SubmittedJob, worded like kin-openapi; '' if none."""
    if not isinstance(doc, dict):
        return "value must be an object"
    for name in ("name", "type", "priority", "submitter_platform"):
        if name not in doc:
            return f'Error at "/{name}": property "{name}" is missing'
    kinds: dict[str, tuple[type | tuple[type, ...], str]] = {
        "name": (str, "a string"), "type": (str, "a string"), "type_etag": (str, "a string"),
        "submitter_platform": (str, "a string"), "worker_tag": (str, "a string"),
        "settings": (dict, "an object"), "metadata": (dict, "an object"),
        "storage": (dict, "an object"), "initial_status": (str, "a string"),
    }
    for name, (kind, words) in kinds.items():
        if name in doc and not isinstance(doc[name], kind):
            return f'Error at "/{name}": value must be {words}'
    priority = doc["priority"]
    if isinstance(priority, bool) or not isinstance(priority, int | float) or (
            isinstance(priority, float) and not priority.is_integer()):
        return 'Error at "/priority": value must be an integer'
    for key, value in doc.get("metadata", {}).items():
        if not isinstance(value, str):
            return f'Error at "/metadata/{key}": value must be a string'
    checkout = doc.get("storage", {}).get("shaman_checkout_id")
    if checkout is not None and not isinstance(checkout, str):
        return 'Error at "/storage/shaman_checkout_id": value must be a string'
    status = doc.get("initial_status")
    if status is not None and status not in _JOB_STATUSES:
        allowed = ",".join(f'"{s}"' for s in _JOB_STATUSES)
        return f'Error at "/initial_status": value is not one of the allowed values [{allowed}]'
    return ""


# ---------------------------------------------------------------------------------------
# What the stock job types' scripts do with a job (compileJob)


class CompileError(Exception):
    """The job type's script refused the job: its message is the 400's."""


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def frame_list(frames: str) -> list[int]:
    """Flamenco's frame range syntax ('47', '1-30', '3, 5-10, 47-327'), as its frame
    chunker reads it; CompileError in its words."""
    if not frames.strip():
        raise CompileError(f"GoError: invalid range {_go_quote(frames)}: empty range{_CHUNKER}")
    found: set[int] = set()
    for raw in frames.split(","):
        part = raw.strip()
        head, dash, tail = part[1:].partition("-")  # a leading '-' is a sign
        ends = [part[:1] + head, tail] if dash else [part]
        numbers: list[int] = []
        for end in ends:
            end = end.strip()
            if not re.fullmatch(r"[+-]?[0-9]+", end):
                raise CompileError(
                    f"GoError: invalid range {_go_quote(frames)}:  {part} (strconv.ParseInt: "
                    f"parsing {_go_quote(end)}: invalid syntax){_CHUNKER}")
            numbers.append(int(end))
        first, last = numbers[0], numbers[-1]
        if last < first:
            raise CompileError(f"GoError: invalid range {_go_quote(frames)}: {part} "
                               f"(end frame {last} before start frame {first}){_CHUNKER}")
        found.update(range(first, last + 1))
    return sorted(found)


def _range_text(frames: list[int]) -> str:
    """A chunk's frames as the chunker names them: '1-3', '10', '3,5-6'."""
    runs: list[list[int]] = []
    for frame in frames:
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _js_int(value: Any) -> int:
    """What the script's Number(...) makes of a setting (a string '3' is 3)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    return int(number) if number == number else 0


def _compile_simple_render(settings: dict[str, Any], created_ns: int) -> list[dict[str, Any]]:
    """simple-blender-render's compileJob: refuses movie formats, fills in
    ``{timestamp}``, chunks the frames, adds the preview video; returns the tasks
    (name, task type, steps) and edits ``settings`` as the script does."""
    fmt = settings.get("format")
    if fmt in _VIDEO_FORMATS:
        raise CompileError(f"This job type only renders images, and not {_go_quote(fmt)} "
                           "at compileJob (simple_blender_render.js:70:9(27))")
    output = settings.get("render_output_path")
    if not output:
        raise CompileError("no render_output_path setting! at renderOutputPath "
                           "(simple_blender_render.js)")
    stamp = time.strftime("%Y-%m-%d_%H%M%S", time.localtime(created_ns // 10**9))
    settings["render_output_path"] = str(output).replace("{timestamp}", stamp)
    frames = settings.get("frames")
    chunk = _js_int(settings.get("chunk_size"))
    found = frame_list("" if frames is None else str(frames))
    if chunk < 1:
        raise CompileError(f"GoError: invalid chunk size {chunk}{_CHUNKER}")
    tasks = []
    for start in range(0, len(found), chunk):
        part = found[start:start + chunk]
        tasks.append({"name": f"render-{_range_text(part)}", "task_type": "blender",
                      "steps_total": len(part)})
    needs_previews = fmt in _NO_FFMPEG_FORMATS
    if settings.get("fps") and not (needs_previews and not settings.get("has_previews")):
        tasks.append({"name": "preview-video", "task_type": "ffmpeg", "steps_total": 1})
    return tasks


def _compile_echo_sleep(settings: dict[str, Any], created_ns: int) -> list[dict[str, Any]]:
    """echo-sleep-test's compileJob: an echo, then ``sleep_repeats`` sleeps."""
    tasks = [{"name": "echo", "task_type": "misc", "steps_total": 1}]
    for _ in range(_js_int(settings.get("sleep_repeats"))):
        tasks.append({"name": "sleep", "task_type": "misc", "steps_total": 1})
    return tasks


_COMPILERS: dict[str, Callable[[dict[str, Any], int], list[dict[str, Any]]]] = {
    "simple-blender-render": _compile_simple_render,
    "echo-sleep-test": _compile_echo_sleep,
}


# ---------------------------------------------------------------------------------------
# The Manager's state


class ManagerJobs:
    """Job types, worker tags and jobs of one local Manager (see the module's text).

    ``owner`` is the ``ShamanServer``: its ``storage``, ``faults.shaman_disabled`` and
    ``counters`` are read here.
    """

    def __init__(self, owner: Any) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self.clock: Callable[[], int] = time.time_ns
        self.version: dict[str, str] = dict(VERSION)
        self.stale_etags = False
        self.too_old = False
        self._types: dict[str, dict[str, Any]] = {t["name"]: t for t in load_stock_job_types()}
        self._tags: list[dict[str, str]] = []
        self._jobs: dict[str, dict[str, Any]] = {}
        self._tasks: dict[str, list[dict[str, Any]]] = {}

    # -- knobs
    def reset_knobs(self) -> None:
        self.stale_etags = False
        self.too_old = False

    def bump_etag(self, name: str) -> str:
        """The job type was edited on the Manager: a new etag, returned."""
        with self._lock:
            job_type = self._types[name]
            job_type["etag"] = hashlib.sha1(
                (job_type["etag"] + "edited").encode()).hexdigest()
            return str(job_type["etag"])

    def add_job_type(self, doc: dict[str, Any]) -> None:
        """Serve another job type (its ``name``, ``etag``, ``settings``...)."""
        with self._lock:
            self._types[doc["name"]] = copy.deepcopy(doc)

    def job_type(self, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._types[name])

    def add_worker_tag(self, name: str, description: str | None = None) -> dict[str, str]:
        status, doc = self._create_tag({"name": name, **(
            {"description": description} if description is not None else {})})
        if status != 200:
            raise ValueError(doc["message"])
        return dict(doc)

    @property
    def jobs(self) -> list[dict[str, Any]]:
        """Every stored job, as ``GET /api/v3/jobs/{id}`` answers it, oldest first."""
        with self._lock:
            return [copy.deepcopy(job) for job in self._jobs.values()]

    # -- answers
    def answer(self, endpoint: str, params: tuple[str, ...], method: str, doc: Any) -> Answer:
        """The answer to one request (``doc``: the decoded body of a POST)."""
        if endpoint == "version":
            return 200, dict(self.version)
        if endpoint in ("variables", "shared_storage"):
            return self._configuration(endpoint, *params)
        if endpoint == "job_types":
            with self._lock:
                return 200, {"job_types": [copy.deepcopy(self._types[n])
                                           for n in sorted(self._types)]}
        if endpoint == "job_type":
            with self._lock:
                found = self._types.get(params[0])
                return (200, copy.deepcopy(found)) if found else _error(
                    404, "no such job type known")
        if endpoint == "worker_tags":
            if method == "POST":
                return self._create_tag(doc)
            with self._lock:
                return 200, {"tags": [dict(t) for t in self._tags]}
        if endpoint in ("jobs_check", "jobs_submit"):
            return self._submit(doc, store=endpoint == "jobs_submit")
        return self._job_answer(endpoint, params[0])

    def _storage_location(self) -> str:
        owner = self._owner
        enabled = not owner.faults.shaman_disabled
        return str(owner.storage / "jobs" if enabled else owner.storage)

    def _configuration(self, endpoint: str, audience: str, platform: str) -> Answer:
        if audience not in ("workers", "users"):
            return 400, {"message": 'parameter "audience" in path has an error: value is '
                                    'not one of the allowed values ["workers","users"]'}
        location = self._storage_location()
        if endpoint == "shared_storage":
            return 200, {"audience": audience, "location": location, "platform": platform,
                         "shamanEnabled": not self._owner.faults.shaman_disabled}
        blender = "blender.exe" if platform == "windows" else "blender"
        return 200, {"blender": {"is_twoway": False, "value": blender},
                     "blenderArgs": {"is_twoway": False, "value": "-b -y"},
                     "jobs": {"is_twoway": False, "value": location}}

    def _create_tag(self, doc: Any) -> Answer:
        if not isinstance(doc, dict):
            return _validation("WorkerTag", "value must be an object")
        if "name" not in doc:
            return _validation("WorkerTag", 'Error at "/name": property "name" is missing')
        for key in ("name", "description"):
            if key in doc and not isinstance(doc[key], str):
                return _validation("WorkerTag", f'Error at "/{key}": value must be a string')
        with self._lock:
            if any(t["name"] == doc["name"] for t in self._tags):
                return _error(500, "error creating worker tag")
            tag: dict[str, str] = {}
            if "description" in doc:
                tag["description"] = doc["description"]
            tag["id"] = str(uuid.uuid4())
            tag["name"] = doc["name"]
            self._tags.append(tag)
            return 200, dict(tag)

    def _submit(self, doc: Any, *, store: bool) -> Answer:
        """``/jobs/check`` (store=False) and ``/jobs``: the Manager's order of refusals."""
        counters = self._owner.counters
        (counters._job_submission if store else counters._job_check)(copy.deepcopy(doc))
        problem = submitted_job_problem(doc)
        if problem:
            return 400, {"message": f"{_VALIDATION}SubmittedJob: {problem}"}
        with self._lock:
            job_type = self._types.get(doc["type"])
            etag = job_type["etag"] if job_type else ""
        if job_type is None:
            return _error(400, "job type unknown")
        if self.stale_etags or (doc.get("type_etag") and doc["type_etag"] != etag):
            return _error(412, _STALE)
        created = self.clock()
        settings = copy.deepcopy(doc.get("settings", {}))
        compiler = _COMPILERS.get(doc["type"])
        try:
            tasks = compiler(settings, created) if compiler else []
        except CompileError as exc:
            return _error(400, str(exc))
        if not store:
            return 204, None
        tag = doc.get("worker_tag") or ""
        with self._lock:
            if tag and all(t["id"] != tag for t in self._tags):
                return _error(500, "error persisting job in database")
            job = self._new_job(doc, settings, tag, created)
            self._tasks[job["id"]] = self._new_tasks(job, tasks)
            return 200, copy.deepcopy(job)

    def _new_job(self, doc: dict[str, Any], settings: dict[str, Any], tag: str,
                 created: int) -> dict[str, Any]:
        job: dict[str, Any] = {}
        if "metadata" in doc:
            job["metadata"] = _go_value(doc["metadata"])
        job["name"] = doc["name"]
        job["priority"] = _go_value(doc["priority"])
        if "settings" in doc:
            job["settings"] = _go_value(settings)
        checkout = doc.get("storage", {}).get("shaman_checkout_id")
        if checkout:
            job["storage"] = {"shaman_checkout_id": checkout}
        job["submitter_platform"] = ""
        job["type"] = doc["type"]
        if tag:
            job["worker_tag"] = tag
        stamp = _rfc3339(created)
        job.update({"activity": "", "created": stamp, "id": str(uuid.uuid4()),
                    "status": "paused" if doc.get("initial_status") == "paused" else "queued",
                    "steps_completed": 0, "steps_total": 0, "updated": stamp})
        self._jobs[job["id"]] = job
        return job

    def _new_tasks(self, job: dict[str, Any], tasks: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
        updated = _rfc3339(self.clock())
        return [{"id": str(uuid.uuid4()), "index_in_job": index, "name": task["name"],
                 "priority": job["priority"], "status": "queued", "steps_completed": 0,
                 "steps_total": task["steps_total"], "task_type": task["task_type"],
                 "updated": updated, "worker": {"address": "", "id": "", "name": ""}}
                for index, task in enumerate(tasks, start=1)]

    def _job_answer(self, endpoint: str, job_id: str) -> Answer:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return _error(404, "no such job")
            if endpoint == "job_tasks":
                return 200, {"tasks": copy.deepcopy(self._tasks[job_id])}
            if endpoint == "job_delete_info":
                return 200, {"shaman_checkout": "storage" in job}
            return 200, copy.deepcopy(job)
