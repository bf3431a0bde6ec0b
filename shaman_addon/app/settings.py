"""Settings as a person gives them (flags, preferences, the environment) -> ``SubmitOptions``.

The command line and the Blender preferences hold the same plain ``Settings``; this
module checks them and builds the options and the HTTP client's settings, so both
interfaces refuse the same things with the same sentences. Each interface calls its
settings differently (``--jobs`` vs "Parallel uploads"): ``Names`` says how, and every
``ConfigError`` names the setting or flag at fault that way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError, OnlineAccessRefused
from ..submit.checkout_name import DEFAULT_TEMPLATE, template_fields
from . import netpolicy

if TYPE_CHECKING:
    from ..jobs.request import JobRequest
    from ..shaman.client import ClientSettings
    from ..submit import SubmitOptions

ENV_SERVER_URL = "SHAMAN_SERVER_URL"
"""The studio-wide default server: read by the command line and by the preferences."""

DEFAULT_JOBS = 4
DEFAULT_CONNECTIONS = 1
DEFAULT_REQUEST_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 5.0
"""At most this long to connect: a server that takes longer is down or unreachable."""
MIN_POOL_SIZE = 8


@dataclass(frozen=True)
class Settings:
    """One interface's settings as plain values (read on the main thread)."""

    server_url: str = ""
    checkout_template: str = DEFAULT_TEMPLATE
    project_root: Path | None = None
    jobs: int = DEFAULT_JOBS
    connections: int = DEFAULT_CONNECTIONS
    pipelining: bool = True
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT_S
    fail_on_missing: bool = False
    allow_credential_files: bool = False


@dataclass(frozen=True)
class Names:
    """What each setting is called where the person sets it, for error messages."""

    server_url: str
    how_to_set_server: str
    checkout_template: str
    jobs: str
    connections: str
    request_timeout: str


CLI_NAMES = Names(
    server_url="--server",
    how_to_set_server=f"pass --server URL or set the environment variable {ENV_SERVER_URL}",
    checkout_template="--checkout-path",
    jobs="--jobs",
    connections="--connections",
    request_timeout="the request timeout",
)

_PREFS = "in Edit > Preferences > Add-ons > Shaman Submitter"
BLENDER_NAMES = Names(
    server_url=f"Server URL {_PREFS}",
    how_to_set_server=f"fill in Server URL {_PREFS} (or set {ENV_SERVER_URL} before "
    "starting Blender)",
    checkout_template=f"Checkout path {_PREFS}",
    jobs=f"Parallel uploads {_PREFS}",
    connections="the number of upload connections",
    request_timeout=f"Request timeout {_PREFS}",
)


def environment_server_url(environ: Mapping[str, str] | None = None) -> str:
    """The server URL the environment gives (``$SHAMAN_SERVER_URL``), or ''."""
    env = os.environ if environ is None else environ
    return env.get(ENV_SERVER_URL, "").strip()


def resolve_server_url(url: str, names: Names, *, online_access: bool | None = None) -> str:
    """``url`` normalised; ConfigError when it is empty or malformed.

    ``online_access`` (Blender's setting) applies the network policy: a server that is
    not on the local network needs it (``OnlineAccessRefused``); None: no policy.
    """
    from ..shaman.client import normalise_base_url

    if not url.strip():
        raise ConfigError(f"No Shaman server is set: {names.how_to_set_server}.")
    try:
        normalised = normalise_base_url(url)
    except ConfigError as exc:
        raise _naming(exc, names.server_url) from exc
    if online_access is not None:
        decision = netpolicy.decide(normalised, online_access=online_access)
        if not decision.allowed:
            raise OnlineAccessRefused(decision.message)
    return normalised


def command_line_server(flag: str | None, environ: Mapping[str, str] | None = None) -> (
    tuple[str, Names]
):
    """The command line's server: ``--server``, else ``$SHAMAN_SERVER_URL``; with the
    names that blame whichever of the two gave it."""
    if flag and flag.strip():
        return flag, CLI_NAMES
    return environment_server_url(environ), replace(CLI_NAMES, server_url=f"${ENV_SERVER_URL}")


def _naming(exc: ConfigError, name: str) -> ConfigError:
    return exc.reworded(f"{str(exc).rstrip('.')}; check {name}.")


def client_settings(settings: Settings, *, request_timeout: float | None = None) -> ClientSettings:
    """The HTTP client's settings: ``request_timeout`` (default: the setting) bounds each
    answer, connecting takes at most ``CONNECT_TIMEOUT_S``, and the connection pool holds
    one connection per parallel upload."""
    from ..shaman.client import ClientSettings

    timeout = settings.request_timeout if request_timeout is None else request_timeout
    return ClientSettings(
        connect_timeout=min(CONNECT_TIMEOUT_S, timeout),
        read_timeout=timeout,
        pool_size=max(MIN_POOL_SIZE, settings.jobs),
        upload_connections=settings.connections,
        pipelining=settings.pipelining,
    )


def check(settings: Settings, names: Names) -> None:
    """ConfigError naming the setting at fault; the URL is checked by
    ``resolve_server_url``."""
    for value, name in ((settings.jobs, names.jobs), (settings.connections, names.connections)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1 (got {value}).")
    if not settings.request_timeout > 0:
        raise ConfigError(
            f"{names.request_timeout} must be more than 0 seconds "
            f"(got {settings.request_timeout})."
        )
    try:
        template_fields(settings.checkout_template)
    except ConfigError as exc:
        raise _naming(exc, names.checkout_template) from exc


@dataclass(frozen=True)
class Run:
    """What one submission adds to the settings."""

    cache_dir: Path | None
    """None: no cache folder (no home folder to put it in); checksums are not kept."""
    dry_run: bool = False
    as_name: str | None = None
    app_info: dict[str, str] = field(default_factory=dict)
    job: JobRequest | None = None
    """The render job (``app.jobs.prepare_job``); None: checkout only."""


def submit_options(
    settings: Settings, run: Run, names: Names, *, online_access: bool | None = None
) -> SubmitOptions:
    """Checked options for one submission; ConfigError naming the setting at fault."""
    from ..submit import SubmitOptions

    url = resolve_server_url(settings.server_url, names, online_access=online_access)
    check(settings, names)
    return SubmitOptions(
        server_url=url,
        checkout_template=settings.checkout_template,
        project_root=settings.project_root,
        jobs=settings.jobs,
        dry_run=run.dry_run,
        fail_on_missing=settings.fail_on_missing,
        allow_credential_files=settings.allow_credential_files,
        cache_dir=run.cache_dir,
        as_name=run.as_name,
        client_settings=client_settings(settings),
        app_info=dict(run.app_info),
        job=run.job,
    )


def command_line_blend(path: Path) -> Path:
    """The .blend a command names, absolute (so the history and the messages name it
    whatever folder the command ran in); ConfigError, the same for ``deps`` and
    ``submit``, when it is not a file."""
    if not path.is_file():
        raise ConfigError(f"{path} is not a file; give the .blend file to submit.")
    return path.absolute()
