"""The Shaman HTTP API of a Flamenco 3 Manager: four endpoints plus the configuration.

Typed results in, typed errors out. Every failure becomes one of the classes in
``errors`` with a sentence that names the URL (and the file or checkout path) and quotes
the server's own message, whatever shape the error body has. Retries follow the
protocol page's table per endpoint; ``checkout/create`` is never repeated once anything
was sent, because a repeat can make a second checkout.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import http.client
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

import requests

from ..errors import (
    Cancelled,
    CheckoutAnswerLost,
    ConfigError,
    LocalFileChanged,
    NotAShamanServer,
    ServerTimeout,
    ServerUnreachable,
    ShamanDisabled,
    ShamanError,
    UploadReset,
)
from .http_answer import Answer
from .plain_uploads import PlainUploadPool, UploadPipe, as_requests_error
from .server_errors import error_from_response, read_error_body
from .transport import (
    DEFAULT_CHUNK_SIZE,
    ConnectionRegistry,
    UploadBody,
    file_size,
    make_session,
)

log = logging.getLogger(__name__)

API = "/api/v3"
FILE_STATUSES = ("unknown", "uploading", "stored")
REQUIREMENT_STATUSES = ("unknown", "uploading")
MAX_BACKOFF_S = 10.0
MAX_FILENAME_BYTES = 255  # of the X-Shaman-Original-Filename value, before encoding
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_USERINFO_RE = re.compile(r"^([^/?#@]*//)?[^/?#@]*@")


@dataclass(frozen=True)
class FileSpec:
    """One file as the server knows it: content (sha, size) and place in the checkout."""

    sha: str
    size: int
    path: str

    def to_json(self) -> dict[str, Any]:
        return {"sha": self.sha, "size": self.size, "path": self.path}


@dataclass(frozen=True)
class FileRequirement:
    """A file the server still needs: ``unknown`` (send it) or ``uploading`` (someone is)."""

    sha: str
    size: int
    path: str
    status: str


class UploadResult(enum.Enum):
    STORED = "stored"  # 200 (real Manager) or 204 (API description)
    ALREADY_KNOWN = "known"  # 208: not proof of storage; re-check requirements
    DEFERRED = "deferred"  # 425: someone else is uploading it; try later


@dataclass(frozen=True)
class ManagerConfiguration:
    storage_location: str
    shaman_enabled: bool
    is_first_run: bool


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
    # Plain-http connections that small uploads share, pipelined (plain_uploads.py).
    upload_connections: int = 1


@dataclass(frozen=True)
class ServerCheck:
    """The answer to "Check server", in plain words for the artist."""

    ok: bool
    reachable: bool
    is_manager: bool
    shaman_enabled: bool
    message: str


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
        guess = f"http://{rest if sep else text}".rstrip("/")
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


def check_file_spec(spec: FileSpec) -> None:
    """Refuse what the server would not catch: a path that leaves the checkout folder,
    an upper-case or malformed checksum (417 later), a negative size."""
    if not _SHA_RE.fullmatch(spec.sha):
        raise ConfigError(
            f"Checksum {spec.sha!r} of {spec.path!r} is not 64 lower-case hex digits"
        )
    if spec.size < 0:
        raise ConfigError(f"Size {spec.size} of {spec.path!r} is negative")
    path = spec.path
    bad = (
        not path
        or path.startswith("/")
        or "\\" in path
        or re.match(r"^[A-Za-z]:", path) is not None
        or any(part in ("..", "") for part in path.split("/"))
        or "\x00" in path
    )
    if bad:
        raise ConfigError(
            f"Checkout path {path!r} is not a clean relative path (no leading '/', "
            "no '..', no drive letter, '/' separators); refusing to send it"
        )


def _specs_json(files: Sequence[FileSpec]) -> list[dict[str, Any]]:
    for spec in files:
        check_file_spec(spec)
    return [spec.to_json() for spec in files]


# --- failure bookkeeping for the retry loop ------------------------------------------


class _Phase(enum.Enum):
    CONNECT = "connect"  # no connection was made: nothing was sent
    SENT = "sent"  # the request (or part of it) went out; no usable answer
    STATUS = "status"  # an HTTP answer with an error status
    FINAL = "final"  # never retried (TLS, cancel, local file...)


class _AttemptFailed(Exception):
    def __init__(self, error: ShamanError, phase: _Phase, status: int | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.phase = phase
        self.status = status


RetryRule = Callable[[_AttemptFailed], bool]


def _retry_read(f: _AttemptFailed) -> bool:
    """requirements, file status, configuration: safe to repeat."""
    if f.phase in (_Phase.CONNECT, _Phase.SENT):
        return True
    if f.phase is _Phase.STATUS:
        return f.status in (502, 504) or (f.status == 503 and not isinstance(
            f.error, ShamanDisabled))
    return False


def _retry_upload(f: _AttemptFailed) -> bool:
    """POST file: content-addressed, so repeating is safe; a reset mid-body goes back to
    the caller (it asks the status first) instead of looping here."""
    if f.phase is _Phase.CONNECT:
        return True
    if f.phase is _Phase.STATUS:
        return f.status in (500, 502, 504) or (f.status == 503 and not isinstance(
            f.error, ShamanDisabled))
    return False


def _retry_create(f: _AttemptFailed) -> bool:
    """checkout/create: only when nothing was sent at all."""
    return f.phase is _Phase.CONNECT


def _cause_chain(exc: BaseException) -> list[BaseException]:
    """The exception, its args that are exceptions, and their ``reason``/causes."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        item = todo.pop()
        if item in seen:
            continue
        seen.append(item)
        todo.extend(a for a in item.args if isinstance(a, BaseException))
        for attr in ("reason", "__cause__", "__context__"):
            nxt = getattr(item, attr, None)
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return seen


def _has(chain: list[BaseException], name: str) -> bool:
    return any(type(e).__name__ == name or name in (c.__name__ for c in type(e).__mro__)
               for e in chain)


# --- the client ----------------------------------------------------------------------


class ShamanClient:
    """One Manager's Shaman API. Thread-safe: uploads may run in parallel threads."""

    def __init__(
        self,
        base_url: str,
        settings: ClientSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
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
        self._session = make_session(self._registry, max(1, self.settings.pool_size))
        self._verify: bool | str = self.settings.ca_bundle or self.settings.verify_tls
        # requests reads the environment (proxies, CA bundle) again on EVERY call: ~0.2 ms
        # of CPU plus a stat() of the bundle per upload, thousands of times. Read it once.
        self._session.trust_env = False
        self._session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        if self._verify is True and urlsplit(self.base_url).scheme == "https":
            self._verify = (os.environ.get("REQUESTS_CA_BUNDLE")
                            or os.environ.get("CURL_CA_BUNDLE") or True)
        # Plain http with no proxy (a farm's LAN): uploads skip requests/urllib3 entirely.
        self._plain: PlainUploadPool | None = None
        parts = urlsplit(self.base_url)
        if parts.scheme == "http" and parts.hostname and requests.utils.select_proxy(
                self.base_url + "/", self._session.proxies) is None:
            self._plain = PlainUploadPool(parts.hostname, parts.port or 80, self._registry,
                                          self.settings.connect_timeout,
                                          connections=self.settings.upload_connections)
        self._timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        self._user_agent = str(self._session.headers["User-Agent"])
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path.rstrip("/")

    # -- lifecycle ----------------------------------------------------------------------

    def abort(self) -> None:
        """Interrupt every call in flight, from any thread; later calls raise Cancelled."""
        count = self._registry.abort()
        log.info("aborted: shut down %d connection(s) to %s", count, self.base_url)

    def close(self) -> None:
        self._session.close()
        if self._plain is not None:
            self._plain.close()

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
                               _retry_read)
        try:
            return ManagerConfiguration(
                storage_location=str(data.get("storageLocation", "")),
                shaman_enabled=_strict_bool(data["shamanEnabled"]),
                is_first_run=_strict_bool(data.get("isFirstRun", False)),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise NotAShamanServer(
                f"{url} answered, but not with a Flamenco Manager's configuration "
                f"(no 'shamanEnabled' in {_preview(data)}); is this the Manager's URL?",
                url=url, status=200,
            ) from exc

    def check(self) -> ServerCheck:
        """For the "Check server" button: one attempt, never raises for server trouble."""
        probe = ShamanClient(self.base_url, dataclasses.replace(self.settings, max_attempts=1),
                             sleep=self._sleep)
        try:
            try:
                config = probe.configuration()
            except ServerUnreachable as exc:
                return ServerCheck(False, False, False, False, str(exc))
            except NotAShamanServer as exc:
                return ServerCheck(False, True, False, False, str(exc))
            except ShamanError as exc:
                return ServerCheck(False, True, False, False, str(exc))
            if not config.shaman_enabled:
                return ServerCheck(False, True, True, False, _shaman_off(self.base_url))
            try:
                probe.file_status(_EMPTY_SHA, 0)
            except ShamanDisabled:
                return ServerCheck(False, True, True, False, _shaman_off(self.base_url))
            except ServerUnreachable as exc:
                return ServerCheck(False, False, True, True, str(exc))
            except NotAShamanServer as exc:
                return ServerCheck(False, True, True, False,
                                   f"The Manager answers, but its Shaman API does not: {exc}")
            except ShamanError as exc:
                return ServerCheck(False, True, True, True, str(exc))
            return ServerCheck(
                True, True, True, True,
                f"Connected: the Flamenco Manager at {self.base_url} has Shaman enabled "
                f"(storage: {config.storage_location or 'unknown'}).",
            )
        finally:
            probe.close()

    def requirements(self, files: Sequence[FileSpec]) -> list[FileRequirement]:
        """What the server still needs of ``files`` (stored ones are left out)."""
        url = f"{self.base_url}{API}/shaman/checkout/requirements"
        data = self._json_call("Asking which files the server needs", "POST", url,
                               {"files": _specs_json(files)}, _retry_read)
        try:
            answer = [
                FileRequirement(sha=str(item["sha"]), size=int(item["size"]),
                                path=str(item["path"]), status=str(item["status"]))
                for item in data["files"]
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NotAShamanServer(
                f"{url} answered, but not with a Shaman requirements list: {_preview(data)}",
                url=url, status=200,
            ) from exc
        odd = [r.status for r in answer if r.status not in REQUIREMENT_STATUSES]
        if odd:
            log.warning("%s: unexpected requirement status(es) %s", url, sorted(set(odd)))
        log.debug("requirements: %d files asked, %d needed", len(files), len(answer))
        return answer

    def file_status(self, sha: str, size: int) -> str:
        """``unknown``, ``uploading`` or ``stored``."""
        url = f"{self.base_url}{API}/shaman/files/{sha}/{size}"
        data = self._json_call("Asking a file's status", "GET", url, None, _retry_read)
        status = data.get("status") if isinstance(data, dict) else None
        if status not in FILE_STATUSES:
            raise NotAShamanServer(
                f"{url} answered, but not with a Shaman file status: {_preview(data)}",
                url=url, status=200,
            )
        return str(status)

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
        replay: Any = None,
        first_attempt: Any = None,
    ) -> UploadResult:
        """Stream ``path`` to the server as content ``(sha, size)``.

        ``replay``: what a first attempt made elsewhere got (the fast lane's answer, or
        the ``requests`` exception for its broken connection). It is taken as this
        call's first attempt, so retries, back-offs and errors are exactly those of an
        upload made here.

        Raises UploadReset when the connection drops once the body is on its way (the
        caller asks ``file_status`` and decides), LocalFileChanged when the file's size
        is not ``size``, Cancelled when ``cancel`` is set or the client was aborted.
        """
        if first_attempt is not None:  # interim: until the upload seam lands
            raise NotImplementedError("first_attempt")
        fspath = os.fspath(path)
        path, headers = self._upload_request(sha, size, fspath, original_filename, can_defer)
        url = f"{self._origin}{path}"
        what = f"Uploading {fspath}"

        def attempt() -> UploadResult:
            try:
                # Unbuffered: a body read in one piece is then one read() system call.
                fileobj = open(fspath, "rb", buffering=0)  # noqa: SIM115  (closed in finally)
            except OSError as exc:
                raise _AttemptFailed(LocalFileChanged(
                    f"Cannot read {fspath} for upload: {exc.strerror or exc}", path=fspath),
                    _Phase.FINAL) from exc
            try:
                # A small body sent in one piece over plain http tells a size change by
                # itself (http_transport.UploadBody.in_one_piece): no fstat for it.
                actual = size if self.sends_in_one_piece(size) else file_size(fileobj)
                if actual != size:
                    raise _AttemptFailed(LocalFileChanged(
                        f"{fspath} is {actual} bytes now but was {size} bytes when it was "
                        "hashed; it changed on disk, so it will be hashed again",
                        path=fspath), _Phase.FINAL)
                body = UploadBody(
                    fileobj, size, path=fspath, chunk_size=self.settings.chunk_size,
                    send_timeout=self.settings.read_timeout, on_bytes=on_bytes,
                    should_stop=lambda: self._stop_requested(cancel),
                    cancel_message=f"Upload of {fspath} cancelled",
                )
                nonlocal replay
                first, replay = replay, None  # only the first attempt is replayed
                if first is not None:
                    body.sent = size  # that attempt sent the whole body
                response = self._send(what, "POST", url, cancel, headers=headers, path=path,
                                      data=body if size else b"", body=body, replay=first)
            finally:
                fileobj.close()
            status = response.status_code
            if status in (200, 204):
                return UploadResult.STORED
            if status == 208:
                return UploadResult.ALREADY_KNOWN
            if status == 425:
                return UploadResult.DEFERRED
            self._raise_for_status(what, url, response)
            raise AssertionError("unreachable")

        return self._with_retries(what, url, attempt, _retry_upload)

    def _upload_request(self, sha: str, size: int, fspath: str, original_filename: str | None,
                        can_defer: bool) -> tuple[str, dict[str, str]]:
        """The path and headers of an upload (both ways of sending use them)."""
        if size < 0 or not _SHA_RE.fullmatch(sha):
            check_file_spec(FileSpec(sha, size, "upload"))  # raises, naming the fault
        headers = {"User-Agent": self._user_agent, "Content-Type": "application/octet-stream",
                   "Content-Length": str(size)}
        if can_defer:
            headers["X-Shaman-Can-Defer-Upload"] = "true"
        headers["X-Shaman-Original-Filename"] = original_filename_header(
            original_filename if original_filename is not None else os.path.basename(fspath)
        )
        return f"{self._base_path}{API}/shaman/files/{sha}/{size}", headers

    def upload_request(self, sha: str, size: int, path: Any, *, original_filename: str,
                       can_defer: bool) -> Any:
        """Interim: until the upload seam lands."""
        return self._upload_request(sha, size, os.fspath(path), original_filename, can_defer)

    def lanes(self) -> list[Any]:
        """Interim: no pipelined lanes until the upload seam lands."""
        return []

    def upload_pipe(self) -> PipedUploads | None:
        """Small uploads written ahead on one connection by one thread, for a plain-http
        server (None otherwise); see ``PipedUploads``."""
        if self._plain is None:
            return None
        url = f"{self.base_url}{API}/shaman/files"
        return PipedUploads(self, UploadPipe(self._plain, url, self._timeout[1]))

    def sends_in_one_piece(self, size: int) -> bool:
        """True when an upload of ``size`` bytes reads the file once, whole, and sends it
        with its request head: the bytes sent are those of one instant, and a file that
        grew or shrank since it was hashed is refused before anything is sent."""
        return self._plain is not None and size <= self.settings.chunk_size

    def create_checkout(self, files: Sequence[FileSpec], checkout_path: str) -> str:
        """Ask for the checkout; returns the path the SERVER chose (it may add a suffix)."""
        url = f"{self.base_url}{API}/shaman/checkout/create"
        payload = {"files": _specs_json(files), "checkoutPath": checkout_path}
        what = f"Creating checkout {checkout_path!r}"

        def attempt() -> str:
            try:
                response = self._send(what, "POST", url, None, json=payload)
            except _AttemptFailed as failed:
                if failed.phase is _Phase.SENT:
                    raise _AttemptFailed(CheckoutAnswerLost(
                        f"The request to create checkout {checkout_path!r} was sent to {url} "
                        f"but no answer came back ({failed.error}). The checkout may or may "
                        "not exist now; it was not asked for again, because that could make "
                        "a second one. Look in the Manager's jobs folder before resubmitting.",
                        url=url, status=None), _Phase.FINAL) from failed
                raise
            if response.status_code != 200:
                self._raise_for_status(what, url, response)
            data = self._decode_json(what, url, response)
            answered = data.get("checkoutPath") if isinstance(data, dict) else None
            if not isinstance(answered, str) or not answered:
                raise _AttemptFailed(NotAShamanServer(
                    f"{url} answered 200, but without a checkoutPath: {_preview(data)}",
                    url=url, status=200), _Phase.FINAL)
            if answered != checkout_path:
                log.info("server made checkout %r (asked for %r)", answered, checkout_path)
            return answered

        return self._with_retries(what, url, attempt, _retry_create)

    # -- machinery ----------------------------------------------------------------------

    def _stop_requested(self, cancel: threading.Event | None) -> bool:
        return self.aborted or (cancel is not None and cancel.is_set())

    def _pause(self, delay: float) -> None:
        if self._sleep is time.sleep:
            self._registry.aborted.wait(delay)  # abort() cuts a back-off short
        else:
            self._sleep(delay)

    def _with_retries(self, what: str, url: str, attempt: Callable[[], Any],
                      retryable: RetryRule) -> Any:
        max_attempts = self.settings.max_attempts
        for number in range(1, max_attempts + 1):
            if self.aborted:
                raise Cancelled(f"{what} cancelled: the client was stopped")
            try:
                return attempt()
            except _AttemptFailed as failed:
                if number >= max_attempts or not retryable(failed):
                    if number > 1 and retryable(failed):
                        raise _with_attempts(failed.error, number) from failed
                    raise failed.error from failed
                delay = min(self.settings.backoff_s * (2 ** (number - 1)), MAX_BACKOFF_S)
                log.warning("%s (attempt %d of %d); trying again in %.2f s",
                            failed.error, number, max_attempts, delay)
                self._pause(delay)
        raise AssertionError("unreachable")

    def _json_call(self, what: str, method: str, url: str, payload: Any,
                   retryable: RetryRule) -> Any:
        def attempt() -> Any:
            response = self._send(what, method, url, None, json=payload)
            if response.status_code != 200:
                self._raise_for_status(what, url, response)
            return self._decode_json(what, url, response)

        return self._with_retries(what, url, attempt, retryable)

    def _send(self, what: str, method: str, url: str, cancel: threading.Event | None, *,
              body: UploadBody | None = None, **kwargs: Any) -> Any:
        """One HTTP exchange; network failures become ``_AttemptFailed`` with a phase.

        Returns a ``requests.Response`` for calls through the session, and for uploads
        any object with ``status_code``, ``reason``, ``headers`` and ``content`` (the
        plain-http path's ``http_answer.Answer``)."""
        if self._stop_requested(cancel):
            raise _AttemptFailed(Cancelled(f"{what} cancelled"), _Phase.FINAL)
        replay = kwargs.pop("replay", None)
        try:
            if isinstance(replay, BaseException):
                raise replay
            if replay is not None:
                return replay
            if body is not None:
                return self._send_upload(method, url, kwargs["headers"], kwargs["data"],
                                         kwargs["path"])
            return self._session.request(method, url, timeout=self._timeout,
                                         verify=self._verify, allow_redirects=False, **kwargs)
        except ShamanError as exc:  # Cancelled / LocalFileChanged from the upload body
            raise _AttemptFailed(exc, _Phase.FINAL) from exc
        except requests.RequestException as exc:
            if self._stop_requested(cancel):
                raise _AttemptFailed(Cancelled(
                    f"{what} cancelled while the request was in flight"
                    + (f" ({body.sent} bytes sent)" if body else "")), _Phase.FINAL) from exc
            failed = self._network_failure(what, url, exc)
            if body is not None and failed.phase is not _Phase.CONNECT:
                reason = (f"no progress for {self.settings.read_timeout:g} s, the read "
                          "timeout setting" if isinstance(failed.error, ServerTimeout)
                          else _short(exc))
                raise _AttemptFailed(UploadReset(
                    f"{what}: the connection to {url} dropped after {body.sent} of "
                    f"{len(body)} bytes ({reason}); ask the server for the file's status "
                    "before sending it again", url=url), _Phase.FINAL) from exc
            raise failed from exc

    def _send_upload(self, method: str, url: str, headers: dict[str, str],
                     data: Any, path: str) -> Any:
        """An upload straight through the session's adapter (same pools, proxies, TLS and
        exceptions as ``Session.request``): the session's per-call preparation (merging
        settings, cookies, hooks) costs more CPU than the request on loopback, and there
        are thousands of uploads. ``path`` is ``url``'s path (no parsing per upload)."""
        if self._plain is not None:
            return self._plain.send(path, url, headers, data or None, self._timeout[1])
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = url
        prepared.headers = requests.structures.CaseInsensitiveDict(headers)
        prepared.body = data if data else None
        prepared.hooks = {"response": []}
        adapter = self._session.get_adapter(url)
        response = adapter.send(prepared, stream=False, timeout=self._timeout,
                                verify=self._verify, proxies=self._session.proxies)
        response.content  # noqa: B018  (read the answer so the connection is free again)
        return response

    def _network_failure(self, what: str, url: str,
                         exc: requests.RequestException) -> _AttemptFailed:
        chain = _cause_chain(exc)
        connect_s, read_s = self._timeout
        if isinstance(exc, requests.exceptions.SSLError):
            hint = (" (the CA bundle setting is used)" if self.settings.ca_bundle
                    else "; set the CA bundle setting if the Manager uses its own certificate")
            return _AttemptFailed(ServerUnreachable(
                f"{what}: the TLS connection to {url} failed: {_short(exc)}{hint}", url=url),
                _Phase.FINAL)
        if isinstance(exc, requests.exceptions.ProxyError):
            return _AttemptFailed(ServerUnreachable(
                f"{what}: the proxy for {url} failed: {_short(exc)} (proxy settings come "
                "from the HTTP(S)_PROXY / NO_PROXY environment variables)", url=url),
                _Phase.CONNECT)
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return _AttemptFailed(ServerTimeout(
                f"{what}: could not connect to {url} within {connect_s:g} s (the connect "
                "timeout setting); is the Manager running and reachable?", url=url),
                _Phase.CONNECT)
        if _has(chain, "NameResolutionError"):
            host = urlsplit(url).hostname
            return _AttemptFailed(ServerUnreachable(
                f"{what}: cannot reach {url}: the host name {host!r} could not be resolved; "
                "check the Shaman server URL setting", url=url), _Phase.CONNECT)
        if _has(chain, "NewConnectionError"):
            reason = ("connection refused" if _has(chain, "ConnectionRefusedError")
                      else _short(exc))
            return _AttemptFailed(ServerUnreachable(
                f"{what}: cannot reach {url}: {reason}; is the Manager running, and is the "
                "URL right?", url=url), _Phase.CONNECT)
        if (isinstance(exc, requests.exceptions.ReadTimeout) or _has(chain, "ReadTimeoutError")
                or any(isinstance(e, TimeoutError) for e in chain)):
            return _AttemptFailed(ServerTimeout(
                f"{what}: {url} did not answer (or stopped reading) for {read_s:g} s (the "
                "read timeout setting)", url=url), _Phase.SENT)
        return _AttemptFailed(ServerUnreachable(
            f"{what}: the connection to {url} dropped before an answer came "
            f"({_short(exc)})", url=url), _Phase.SENT)

    def _raise_for_status(self, what: str, url: str, response: Any) -> NoReturn:
        """``response``: a ``requests.Response`` or an ``http_answer.Answer``."""
        body = read_error_body(response.content, response.headers.get("Content-Type", ""))
        error = error_from_response(what, url, response.status_code, response.reason or "",
                                    body)
        raise _AttemptFailed(error, _Phase.STATUS, response.status_code)

    def _decode_json(self, what: str, url: str, response: requests.Response) -> Any:
        try:
            data = response.json()
        except ValueError:
            body = read_error_body(response.content, response.headers.get("Content-Type", ""))
            raise _AttemptFailed(NotAShamanServer(
                f"{what}: {url} answered {response.status_code} with {body.describe()}, "
                "not JSON; is this the Flamenco Manager's URL?",
                url=url, status=response.status_code), _Phase.FINAL) from None
        if not isinstance(data, dict):
            raise _AttemptFailed(NotAShamanServer(
                f"{what}: {url} answered with unexpected JSON {_preview(data)}; is this the "
                "Flamenco Manager's URL?", url=url, status=response.status_code), _Phase.FINAL)
        return data


_EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


class PipedUploads:
    """Uploads pipelined by one thread (``plain_uploads.UploadPipe``) with the client's
    headers. ``start`` writes one; ``finish`` reads the oldest answer and says whether it
    was stored. Every failure is for the caller to send again through ``upload``, which
    has the retries, the status checks and the error messages; so nothing here raises
    but ``start`` and ``finish`` themselves (the caller catches all)."""

    def __init__(self, client: ShamanClient, pipe: UploadPipe) -> None:
        self._client = client
        self._pipe = pipe

    def fits(self, size: int) -> bool:
        """Whether an upload of ``size`` bytes can go through the pipe."""
        return self._client.sends_in_one_piece(size)

    def start(self, sha: str, size: int, path: str | os.PathLike[str], *,
              original_filename: str | None = None, can_defer: bool = True) -> int:
        """Write one upload; returns the connection generation to give to ``finish``."""
        fspath = os.fspath(path)
        if not self.fits(size) or self._client.aborted:
            raise ValueError(f"{fspath}: not for the pipe")
        request_path, headers = self._client._upload_request(
            sha, size, fspath, original_filename, can_defer)
        with open(fspath, "rb", buffering=0) as fileobj:
            body = UploadBody(fileobj, size, path=fspath,
                              chunk_size=self._client.settings.chunk_size)
            return self._pipe.write(request_path, headers, body)

    def finish(self, generation: int) -> Answer:
        """The answer to the oldest upload written; a broken connection raises the
        ``requests`` exception an upload made by ``upload`` would have met."""
        try:
            return self._pipe.read(generation)
        except (OSError, http.client.HTTPException) as exc:
            raise as_requests_error(exc, f"{self._client.base_url}{API}/shaman/files") from exc

    def reset(self) -> None:
        self._pipe.reset()


def _shaman_off(base_url: str) -> str:
    return (
        f"The Flamenco Manager at {base_url} runs without Shaman; enable it in "
        "flamenco-manager.yaml (shaman: enabled: true) and restart the Manager."
    )


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"not a boolean: {value!r}")
    return value


def _preview(data: Any, limit: int = 200) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + "..."


def _short(exc: BaseException) -> str:
    """The innermost useful words of a requests/urllib3 exception."""
    chain = _cause_chain(exc)
    for item in reversed(chain):
        if isinstance(item, OSError) and item.strerror:
            return str(item.strerror).lower()
    for item in reversed(chain):
        if type(item).__name__ == "RemoteDisconnected":
            return "the server closed the connection without answering"
    innermost = chain[-1]
    text = str(innermost) or type(innermost).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _with_attempts(error: ShamanError, attempts: int) -> ShamanError:
    """The same error, its message saying how many attempts were made."""
    note = f" (gave up after {attempts} attempts)"
    error.args = (f"{error.args[0] if error.args else error}{note}", *error.args[1:])
    return error


__all__ = [
    "ClientSettings",
    "FileRequirement",
    "FileSpec",
    "ManagerConfiguration",
    "ServerCheck",
    "ShamanClient",
    "UploadResult",
    "normalise_base_url",
    "original_filename_header",
]
