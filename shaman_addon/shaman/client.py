"""The Shaman HTTP API of a Flamenco 3 Manager: four endpoints plus the configuration.

Typed results in, typed errors out. Every failure becomes one of the classes in
``errors`` with a sentence that names the URL (and the file or checkout path) and quotes
the server's own message, whatever shape the error body has. Retries follow the
protocol page's table per endpoint (``retry``); ``checkout/create`` is never repeated
once anything was sent, because a repeat can make a second checkout.

Everything goes through ``requests`` (``requests_transport``). Where it helps (plain
http, no proxy) ``lanes`` also offers pipelined connections for small uploads; what they
do not settle comes back here as ``upload(..., first_attempt=...)``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..errors import (
    AttemptFailed,
    AttemptPhase,
    Cancelled,
    CheckoutAnswerLost,
    ConfigError,
    LocalFileChanged,
    NotAShamanServer,
    ShamanError,
    TransportFailure,
)
from ..untrusted import quoted
from . import answers, deadlines
from .answers import SMALL_ANSWER
from .failures import json_object, network_failure, preview, status_failure, upload_failure
from .messages import Answer, UploadRequest
from .pipelined import PipelinedConnection
from .protocol import (
    API,
    FILE_STATUSES,
    REQUIREMENT_STATUSES,
    FileRequirement,
    FilesBodies,
    FileSpec,
    ManagerConfiguration,
    ServerCheck,
    UploadResult,
    check_file_spec,
    is_checksum,
)
from .requests_transport import RequestsTransport
from .retry import Retrier, retry_create, retry_read, retry_upload
from .server_check import check_server
from .settings import ClientSettings
from .sockets import ConnectionRegistry
from .upload_body import UploadBody, cannot_read, file_size
from .urls import normalise_base_url, original_filename_header, redact_url

log = logging.getLogger(__name__)

class ShamanClient:
    """One Manager's Shaman API. Thread-safe: uploads may run in parallel threads."""

    def __init__(self, base_url: str, settings: ClientSettings | None = None, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = normalise_base_url(base_url)
        self.settings = settings or ClientSettings()
        if self.settings.ca_bundle and not os.path.exists(self.settings.ca_bundle):
            raise ConfigError(
                f"The CA bundle setting points to {self.settings.ca_bundle!r}, "
                "which does not exist"
            )
        if self.settings.max_attempts < 1:
            raise ConfigError("The max attempts setting must be at least 1")
        self._sleep = sleep
        self._registry = ConnectionRegistry()
        self._transport = RequestsTransport(self.base_url, self.settings, self._registry)
        self._retrier = Retrier(self.settings.max_attempts, self.settings.backoff_s,
                                self._registry.aborted, sleep)
        parts = urlsplit(self.base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")
        self._lanes: list[PipelinedConnection] = []
        self._budget_end: float | None = None  # every call ends by then (check())
        self._lanes_lock = threading.Lock()
        self._bodies = FilesBodies()  # the list asked about, encoded once for the checkout

    # -- lifecycle ----------------------------------------------------------------------

    def abort(self) -> None:
        """Interrupt every call in flight, from any thread; later calls raise Cancelled."""
        count = self._registry.abort()
        log.info("aborted: shut down %d connection(s) to %s", count, self.base_url)

    def close(self) -> None:
        self._transport.close()
        with self._lanes_lock:
            lanes, self._lanes = self._lanes, []
        for lane in lanes:
            lane.close()
        deadlines.settle()  # no thread left behind once nothing is in flight

    def __enter__(self) -> ShamanClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def aborted(self) -> bool:
        return self._registry.aborted.is_set()

    # -- endpoints ----------------------------------------------------------------------

    def configuration(self) -> ManagerConfiguration:
        url = f"{self.base_url}{API}/configuration"
        data = self._json_call("Reading the Manager's configuration", "GET", url, None,
                               retry_read, SMALL_ANSWER)
        try:
            return ManagerConfiguration(
                storage_location=str(data.get("storageLocation", "")),
                shaman_enabled=answers.strict_bool(data["shamanEnabled"]),
                is_first_run=answers.strict_bool(data.get("isFirstRun", False)),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise NotAShamanServer(
                f"{url} answered, but not with a Flamenco Manager's configuration "
                f"(no 'shamanEnabled' in {preview(data)}); is this the Manager's URL?",
                url=url, status=200,
            ) from exc

    def check(self) -> ServerCheck:
        """For the "Check server" button: one attempt, never raises for server trouble."""
        probe = ShamanClient(self.base_url, dataclasses.replace(self.settings, max_attempts=1),
                             sleep=self._sleep)
        # Both calls together within the request timeout: the button's 5 s is 5 s.
        probe._budget_end = time.monotonic() + self.settings.read_timeout
        try:
            return check_server(probe, self.base_url)
        finally:
            probe.close()

    def requirements(self, files: Sequence[FileSpec]) -> list[FileRequirement]:
        """What the server still needs of ``files`` (stored ones are left out). Entries
        about content never asked about are ignored; the paths are the ones asked."""
        url = f"{self.base_url}{API}/shaman/checkout/requirements"
        cap = answers.requirements_cap(files)
        data = self._json_call("Asking which files the server needs", "POST", url,
                               self._bodies.body(files), retry_read, cap, moves=2 * cap)
        try:
            answer = [
                FileRequirement(sha=str(item["sha"]), size=int(item["size"]),
                                path=str(item["path"]), status=str(item["status"]))
                for item in data["files"]
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NotAShamanServer(
                f"{url} answered, but not with a Shaman requirements list: {preview(data)}",
                url=url, status=200,
            ) from exc
        answer = answers.only_asked(url, files, answer)
        odd = [r.status for r in answer if r.status not in REQUIREMENT_STATUSES]
        if odd:
            log.warning("%s: unexpected requirement status(es) %s", url,
                        quoted(sorted(set(odd))))
        log.debug("requirements: %d files asked, %d needed", len(files), len(answer))
        return answer

    def file_status(self, sha: str, size: int) -> str:
        """``unknown``, ``uploading`` or ``stored``."""
        url = f"{self.base_url}{API}/shaman/files/{sha}/{size}"
        data = self._json_call("Asking a file's status", "GET", url, None, retry_read,
                               SMALL_ANSWER)
        status = data.get("status")
        if status not in FILE_STATUSES:
            raise NotAShamanServer(
                f"{url} answered, but not with a Shaman file status: {preview(data)}",
                url=url, status=200,
            )
        return str(status)

    def create_checkout(self, files: Sequence[FileSpec], checkout_path: str) -> str:
        """Ask for the checkout; returns the path the SERVER chose (it may add a suffix)."""
        url = f"{self.base_url}{API}/shaman/checkout/create"
        payload = self._bodies.body(files, checkoutPath=checkout_path)
        what = f"Creating checkout {checkout_path!r}"

        def attempt() -> str:
            try:
                answer = self._exchange(what, "POST", url, payload, max_bytes=SMALL_ANSWER,
                                        deadline_s=self._deadline(
                                            answers.requirements_cap(files)))
            except AttemptFailed as failed:
                if failed.phase is AttemptPhase.SENT:
                    raise AttemptFailed(CheckoutAnswerLost(
                        f"The request to create checkout {checkout_path!r} was sent to {url} "
                        f"but no answer came back ({failed.error}). The checkout may or may "
                        "not exist now; it was not asked for again, because that could make "
                        "a second one. Look in the Manager's jobs folder before resubmitting.",
                        url=url, status=None), AttemptPhase.FINAL, cause=failed.error) from failed
                raise
            if answer.status != 200:
                raise status_failure(what, url, answer)
            data = json_object(what, url, answers.too_large(what, url, answer))
            answered = data.get("checkoutPath")
            if not isinstance(answered, str) or not answered:
                raise AttemptFailed(NotAShamanServer(
                    f"{url} answered 200, but without a checkoutPath: {preview(data)}",
                    url=url, status=200), AttemptPhase.FINAL)
            answers.check_checkout_path(url, checkout_path, answered)
            return answered

        return self._retrier.run(what, attempt, retry_create)

    # -- uploads ------------------------------------------------------------------------

    def upload_request(self, sha: str, size: int, path: str | os.PathLike[str], *,
                       original_filename: str | None = None,
                       can_defer: bool = True) -> UploadRequest:
        """The request line and headers of one upload, the same for both ways of sending
        (``Accept-Encoding`` is what ``http.client`` would add by itself)."""
        if size < 0 or not is_checksum(sha):
            check_file_spec(FileSpec(sha, size, "upload"))  # raises, naming the fault
        headers = {"User-Agent": self._transport.user_agent, "Accept-Encoding": "identity",
                   "Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if can_defer:
            headers["X-Shaman-Can-Defer-Upload"] = "true"
        name = original_filename if original_filename is not None else os.fspath(path)
        headers["X-Shaman-Original-Filename"] = original_filename_header(name)
        target = f"{self._base_path}{API}/shaman/files/{sha}/{size}"
        return UploadRequest(target, f"{self._origin}{target}", headers)

    def lanes(self) -> list[PipelinedConnection]:
        """``upload_connections`` new pipelined connections for small uploads, where they
        help: plain http without a proxy (a farm's LAN), ``pipelining`` on. Otherwise an
        empty list, and every upload goes through ``upload``. Closed by ``close``."""
        parts = urlsplit(self.base_url)
        if (not self.settings.pipelining or parts.scheme != "http" or not parts.hostname
                or self._transport.proxied):
            return []
        made = [PipelinedConnection(parts.hostname, parts.port or 80, self._registry,
                                    connect_timeout=self.settings.connect_timeout,
                                    read_timeout=min(self.settings.read_timeout,
                                                     self.settings.lane_read_timeout),
                                    max_size=self.settings.chunk_size,
                                    answer_deadline_s=self.settings.deadline_for(
                                        self.settings.chunk_size))
                for _ in range(max(1, self.settings.upload_connections))]
        with self._lanes_lock:
            self._lanes.extend(made)
        return made

    def upload(
        self,
        sha: str,
        size: int,
        path: str | os.PathLike[str],
        *,
        original_filename: str | None = None,
        can_defer: bool = True,
        on_bytes: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
        first_attempt: Answer | TransportFailure | None = None,
    ) -> UploadResult:
        """Stream ``path`` to the server as content ``(sha, size)``.

        ``first_attempt``: what an attempt made elsewhere got (a lane's answer, or its
        failure), taken as this call's first attempt: the retries, back-offs, status
        handling and errors are exactly those of an upload made here.

        Raises UploadReset when the connection drops once the body is on its way (the
        caller asks ``file_status`` and decides), LocalFileChanged when the file's size
        is not ``size``, Cancelled when ``cancel`` is set or the client was aborted.
        """
        fspath = os.fspath(path)
        request = self.upload_request(sha, size, fspath, original_filename=original_filename,
                                      can_defer=can_defer)
        what = f"Uploading {fspath}"
        given = [first_attempt]

        def attempt() -> UploadResult:
            earlier, given[0] = given[0], None
            if self._stop_requested(cancel):
                raise AttemptFailed(Cancelled(f"{what} cancelled"), AttemptPhase.FINAL)
            if isinstance(earlier, TransportFailure):  # the whole body had gone out
                raise self._upload_failed(what, request, earlier, size, size, cancel)
            answer = earlier or self._send_upload(what, request, fspath, size, on_bytes,
                                                  cancel)
            return answers.upload_result(what, request.url, answer)

        return self._retrier.run(what, attempt, retry_upload)

    def _send_upload(self, what: str, request: UploadRequest, fspath: str, size: int,
                     on_bytes: Callable[[int], None] | None,
                     cancel: threading.Event | None) -> Answer:
        try:
            # Unbuffered: the body's reads go straight into its reused buffer.
            fileobj = open(fspath, "rb", buffering=0)  # noqa: SIM115  (closed by with)
        except OSError as exc:
            raise AttemptFailed(cannot_read(fspath, exc), AttemptPhase.FINAL) from exc
        with fileobj:
            actual = file_size(fileobj)
            if actual != size:
                raise AttemptFailed(LocalFileChanged(
                    f"{fspath} is {actual} bytes now but was {size} bytes when it was hashed; "
                    "it changed on disk, so it will be hashed again", path=fspath),
                    AttemptPhase.FINAL)
            body = UploadBody(
                fileobj, size, path=fspath, chunk_size=self.settings.chunk_size,
                send_timeout=self.settings.read_timeout, on_bytes=on_bytes,
                should_stop=lambda: self._stop_requested(cancel),
                cancel_message=f"Upload of {fspath} cancelled",
            )
            try:
                return self._transport.upload(request, body, max_bytes=SMALL_ANSWER,
                                              deadline_s=self._deadline(size))
            except ShamanError as exc:  # Cancelled / LocalFileChanged from the body
                raise AttemptFailed(exc, AttemptPhase.FINAL) from exc
            except TransportFailure as failure:
                raise self._upload_failed(what, request, failure, body.sent, size,
                                          cancel) from failure

    def _upload_failed(self, what: str, request: UploadRequest, failure: TransportFailure,
                       sent: int, size: int, cancel: threading.Event | None) -> AttemptFailed:
        if self._stop_requested(cancel):
            return AttemptFailed(Cancelled(
                f"{what} cancelled while the request was in flight ({sent} bytes sent)"),
                AttemptPhase.FINAL, cause=failure)
        return upload_failure(what, request.url, failure, sent, size, self.settings)

    # -- machinery ----------------------------------------------------------------------

    def _stop_requested(self, cancel: threading.Event | None) -> bool:
        return self.aborted or (cancel is not None and cancel.is_set())

    def _deadline(self, moves: int) -> float:
        """The overall deadline of a call moving about ``moves`` bytes, within what is
        left of the budget (``check()``)."""
        deadline = self.settings.deadline_for(moves)
        if self._budget_end is not None:
            deadline = min(deadline, max(0.0, self._budget_end - time.monotonic()))
        return deadline

    def _exchange(self, what: str, method: str, url: str, payload: Any, *,
                  max_bytes: int | None = None, deadline_s: float | None = None) -> Answer:
        """One exchange through ``requests``; a failure becomes ``AttemptFailed``.
        ``max_bytes``/``deadline_s`` bound the answer (see ``RequestsTransport.call``);
        the deadline is never more than what is left of the budget."""
        if self.aborted:
            raise AttemptFailed(Cancelled(f"{what} cancelled"), AttemptPhase.FINAL)
        deadline_s = min(self._deadline(0 if max_bytes is None else max_bytes),
                         deadline_s if deadline_s is not None else float("inf"))
        try:
            return self._transport.call(method, url, payload, max_bytes=max_bytes,
                                        deadline_s=deadline_s)
        except TransportFailure as failure:
            if self.aborted:
                raise AttemptFailed(Cancelled(
                    f"{what} cancelled while the request was in flight"), AttemptPhase.FINAL,
                    cause=failure) from failure
            raise network_failure(what, url, failure, self.settings) from failure

    def _json_call(self, what: str, method: str, url: str, payload: Any,
                   retryable: Callable[[AttemptFailed], bool], max_bytes: int, *,
                   moves: int = 0) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            answer = self._exchange(what, method, url, payload, max_bytes=max_bytes,
                                    deadline_s=self._deadline(moves))
            if answer.status != 200:
                raise status_failure(what, url, answer)
            return json_object(what, url, answers.too_large(what, url, answer))

        return self._retrier.run(what, attempt, retryable)


__all__ = [
    "Answer",
    "ClientSettings",
    "FileRequirement",
    "FileSpec",
    "ManagerConfiguration",
    "PipelinedConnection",
    "ServerCheck",
    "ShamanClient",
    "UploadRequest",
    "UploadResult",
    "check_file_spec",
    "normalise_base_url",
    "original_filename_header",
    "redact_url",
]
