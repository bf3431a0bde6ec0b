"""The default way to talk to the Manager: a pooled ``requests`` session whose
connections ``abort()`` can cut, with everything ``requests`` is turned into the client's
own types at this boundary: a ``Response`` into an ``Answer``, a ``requests``/``urllib3``
exception into a ``TransportFailure`` (``transport_failure``, the one place that knows
those libraries' exception classes).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..errors import ConnectFailed, DeadlinePassed, ExchangeFailed, TransportFailure
from . import deadlines
from .messages import Answer, UploadRequest
from .protocol import JsonBody
from .settings import ClientSettings
from .sockets import ConnectionRegistry, causes, failure_words
from .upload_body import UploadBody

log = logging.getLogger(__name__)


class _TrackingMixin:
    """Registers the connection on connect, hands itself to an upload body on request,
    and closes itself after an upload whose body was not sent in full."""

    registry: ConnectionRegistry
    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.registry.add(self)
        deadlines.watch_current(self)

    def close(self) -> None:
        self.registry.discard(self)
        super().close()  # type: ignore[misc]

    def request(self, method: str, url: str, body: Any = None, *args: Any, **kw: Any) -> None:
        deadlines.watch_current(self)  # a pooled connection carries this call now
        if isinstance(body, UploadBody):
            body.attach(self)
        self._upload_body = body if isinstance(body, UploadBody) else None
        super().request(method, url, body, *args, **kw)  # type: ignore[misc]

    def getresponse(self, *args: Any, **kw: Any) -> Any:
        response = super().getresponse(*args, **kw)  # type: ignore[misc]
        body = getattr(self, "_upload_body", None)
        self._upload_body = None
        if body is not None and not body.complete:
            # Part of the body is unsent, so this connection can never carry another
            # request. Detach its socket: the pool then sees a closed connection and makes
            # a new one, while the answer already started stays readable (the response
            # holds the socket's file, which keeps the descriptor open until it is read).
            log.debug("dropping connection after an early answer (%d bytes sent)", body.sent)
            sock, self.sock = self.sock, None
            self.registry.discard(self)
            if sock is not None:
                sock.close()
        return response


def _pool_classes(
    registry: ConnectionRegistry,
) -> tuple[type[HTTPConnectionPool], type[HTTPSConnectionPool]]:
    """Pool classes whose connections report to ``registry`` (one set per client)."""
    http_conn = type("TrackedHTTPConnection", (_TrackingMixin, HTTPConnection), {})
    https_conn = type("TrackedHTTPSConnection", (_TrackingMixin, HTTPSConnection), {})
    http_conn.registry = registry  # type: ignore[attr-defined]
    https_conn.registry = registry  # type: ignore[attr-defined]
    http_pool = type("TrackedHTTPConnectionPool", (HTTPConnectionPool,),
                     {"ConnectionCls": http_conn})
    https_pool = type("TrackedHTTPSConnectionPool", (HTTPSConnectionPool,),
                      {"ConnectionCls": https_conn})
    return http_pool, https_pool


class TrackingAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose pools (direct and through a proxy) use tracked
    connections. ``requests`` retries nothing itself: the client owns the retry rules."""

    def __init__(self, registry: ConnectionRegistry, pool_size: int) -> None:
        self._pool_classes = _pool_classes(registry)
        super().__init__(pool_connections=4, pool_maxsize=pool_size, max_retries=0)

    def _use_tracked_pools(self, manager: Any) -> None:
        http_pool, https_pool = self._pool_classes
        manager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._use_tracked_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools must stay SOCKS pools
            self._use_tracked_pools(manager)
        return manager

    def __setstate__(self, state: dict[str, Any]) -> None:  # pragma: no cover - pickling
        raise TypeError("TrackingAdapter cannot be unpickled")


def transport_failure(exc: requests.RequestException) -> TransportFailure:
    """What ``exc`` means for the client, from the public exception classes of
    ``requests``, ``urllib3`` and the socket layer (wherever in the chain they are)."""
    chain = causes(exc)

    def has(*kinds: type[BaseException]) -> bool:
        return any(isinstance(item, kinds) for item in chain)

    words = failure_words(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectFailed(words, kind="tls")
    if isinstance(exc, requests.exceptions.ProxyError):
        return ConnectFailed(words, kind="proxy")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectFailed(words, kind="timeout")
    if has(socket.gaierror):
        return ConnectFailed(words, kind="unresolved")
    if has(urllib3.exceptions.NewConnectionError):
        refused = has(ConnectionRefusedError)
        return ConnectFailed("connection refused" if refused else words,
                             kind="refused" if refused else "other")
    timed_out = (isinstance(exc, requests.exceptions.ReadTimeout)
                 or has(urllib3.exceptions.ReadTimeoutError, TimeoutError))
    return ExchangeFailed(words, timed_out=timed_out)


def _read_bounded(raw: Any, limit: int) -> tuple[bytes, bool]:
    """The body, at most ``limit`` bytes (-1: all), and whether there was more. Read as
    it arrives (``read1``: urllib3 2), so a huge body is never held whole; urllib3 1
    (older Blender) reads in small pieces instead. The call's deadline guard cuts a
    server that drips it."""
    read1 = getattr(raw, "read1", None)
    chunks: list[bytes] = []
    size = 0
    while True:  # bounded: each piece adds bytes, up to the limit, within the deadline
        chunk = (read1(64 * 1024, decode_content=True) if read1 is not None
                 else raw.read(4096, decode_content=True))
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
        if 0 <= limit < size:
            return b"".join(chunks)[:limit], True


def _deadline_passed(call: deadlines.CallGuard) -> DeadlinePassed:
    return DeadlinePassed(f"no complete answer within {round(call.seconds, 1):g} s",
                          deadline_s=call.seconds)


class RequestsTransport:
    """One ``requests`` session to one Manager, with the environment read once."""

    def __init__(self, base_url: str, settings: ClientSettings,
                 registry: ConnectionRegistry) -> None:
        session = requests.Session()
        adapter = TrackingAdapter(registry, max(1, settings.pool_size))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # requests reads the environment (proxies, CA bundle) again on EVERY call: ~0.2 ms
        # of CPU plus a stat() of the bundle per upload, thousands of times. Read it once.
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
        verify: bool | str = settings.ca_bundle or settings.verify_tls
        if verify is True and urlsplit(base_url).scheme == "https":
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
                "CURL_CA_BUNDLE") or True
        self._session = session
        self._adapter = adapter
        self._verify = verify
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self.user_agent = str(session.headers["User-Agent"])
        self.proxied = requests.utils.select_proxy(base_url + "/", session.proxies) is not None

    def call(self, method: str, url: str, payload: Any = None, *,
             max_bytes: int | None = None, deadline_s: float | None = None) -> Answer:
        """One exchange with an optional JSON body; raises TransportFailure.

        ``max_bytes``: read at most this much of the body (the answer comes back
        ``truncated``); ``deadline_s``: the whole exchange, connect and answer included,
        takes at most this long (DeadlinePassed), however slowly the server drips."""
        body: dict[str, Any] = {"json": payload}
        if isinstance(payload, JsonBody):  # encoded already: sent as it is
            body = {"data": payload.data, "headers": {"Content-Type": "application/json"}}
        with deadlines.guard(deadline_s) as call:
            return self._guarded(call, lambda: self._session.request(
                method, url, timeout=self._timeout, verify=self._verify,
                allow_redirects=False, stream=True, **body), max_bytes)

    def _guarded(self, call: deadlines.CallGuard | None,
                 send: Callable[[], requests.Response], max_bytes: int | None) -> Answer:
        """``send()`` (a streamed request), its body read up to ``max_bytes``; failures
        become TransportFailure, and DeadlinePassed once ``call``'s deadline cut it."""
        cause: BaseException
        try:
            response = send()
            with response:
                body, truncated = _read_bounded(
                    response.raw, max_bytes if max_bytes is not None else -1)
            answer = Answer(response.status_code, response.reason or "",
                            list(response.headers.items()), body, truncated=truncated)
        except requests.RequestException as exc:
            failure, cause = transport_failure(exc), exc
        except urllib3.exceptions.HTTPError as exc:  # raised by the raw body's reads
            failure, cause = transport_failure(requests.exceptions.ConnectionError(exc)), exc
        else:
            if call is not None and call.expired:  # cut: the body may be short
                raise _deadline_passed(call)
            return answer
        if call is not None and call.expired:
            raise _deadline_passed(call) from failure
        raise failure from cause

    def upload(self, request: UploadRequest, body: UploadBody, *,
               max_bytes: int | None = None, deadline_s: float | None = None) -> Answer:
        """POST ``body`` straight through the session's adapter (same pools, proxies, TLS
        and exceptions as ``Session.request``): the session's per-call preparation
        (merging settings, cookies, hooks) costs more CPU than the request on loopback.
        Raises TransportFailure; an error ``body`` raises (Cancelled...) passes as is.
        ``max_bytes``/``deadline_s``: as for ``call``."""
        prepared = requests.PreparedRequest()
        prepared.method = "POST"
        prepared.url = request.url
        prepared.headers = requests.structures.CaseInsensitiveDict(request.headers)
        prepared.body = cast(Any, body) if len(body) else None
        prepared.hooks = {"response": []}
        with deadlines.guard(deadline_s) as call:
            return self._guarded(call, lambda: self._adapter.send(
                prepared, stream=True, timeout=self._timeout, verify=self._verify,
                proxies=self._session.proxies), max_bytes)

    def close(self) -> None:
        self._session.close()
