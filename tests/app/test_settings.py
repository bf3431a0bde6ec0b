"""Settings to options (app.settings): one check for the CLI and Blender, naming the
setting or flag at fault the way each interface calls it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shaman_addon.app import settings
from shaman_addon.app.settings import BLENDER_NAMES, CLI_NAMES, Run, Settings
from shaman_addon.errors import ConfigError, OnlineAccessRefused


def _options(s: Settings, names: settings.Names = CLI_NAMES, **kw: object) -> object:
    return settings.submit_options(s, Run(cache_dir=Path("/c"), **kw), names)  # type: ignore[arg-type]


def test_plain_settings_become_checked_options() -> None:
    options = settings.submit_options(
        Settings(server_url=" HTTP://farm:8080/ ", checkout_template="{user}/{blend_name}",
                 project_root=Path("/p"), jobs=12, connections=3, request_timeout=2.5,
                 fail_on_missing=True),
        Run(cache_dir=Path("/c"), dry_run=True, as_name="shot.blend",
            app_info={"interface": "test"}),
        CLI_NAMES,
    )
    assert options.server_url == "http://farm:8080"
    assert options.checkout_template == "{user}/{blend_name}"
    assert options.project_root == Path("/p") and options.jobs == 12
    assert options.dry_run and options.fail_on_missing and options.as_name == "shot.blend"
    assert options.cache_dir == Path("/c") and options.app_info == {"interface": "test"}
    client = options.client_settings
    assert client.read_timeout == 2.5 and client.connect_timeout == 2.5
    assert client.pool_size == 12 and client.upload_connections == 3


def test_the_client_settings_of_a_request_timeout() -> None:
    default = settings.client_settings(Settings())
    assert (default.connect_timeout, default.read_timeout) == (5.0, 60.0)
    assert default.pool_size == 8 and default.upload_connections == 1
    check = settings.client_settings(Settings(jobs=4), request_timeout=5.0)
    assert (check.connect_timeout, check.read_timeout) == (5.0, 5.0)


@pytest.mark.parametrize(
    ("bad", "cli", "blender"),
    [
        (Settings(server_url="http://x", jobs=0), "--jobs must be at least 1 (got 0).",
         "Parallel uploads in Edit > Preferences > Add-ons > Shaman Submitter must be"),
        (Settings(server_url="http://x", connections=0),
         "--connections must be at least 1 (got 0).", "upload connections must be"),
        (Settings(server_url="http://x", request_timeout=0), "the request timeout must be",
         "Request timeout in Edit > Preferences"),
        (Settings(server_url="http://x", checkout_template="{shot}"), "check --checkout-path.",
         "check Checkout path in Edit > Preferences"),
        (Settings(server_url="ftp://farm"), "check --server.",
         "check Server URL in Edit > Preferences"),
        (Settings(), "pass --server URL or set the environment variable SHAMAN_SERVER_URL",
         "fill in Server URL in Edit > Preferences > Add-ons > Shaman Submitter"),
    ],
)
def test_a_wrong_setting_is_named_as_the_interface_calls_it(
    bad: Settings, cli: str, blender: str
) -> None:
    with pytest.raises(ConfigError) as on_cli:
        _options(bad, CLI_NAMES)
    with pytest.raises(ConfigError) as in_blender:
        _options(bad, BLENDER_NAMES)
    assert cli in str(on_cli.value), on_cli.value
    assert blender in str(in_blender.value), in_blender.value


def test_a_reworded_error_keeps_its_cause() -> None:
    with pytest.raises(ConfigError) as caught:
        _options(Settings(server_url="http://x", checkout_template="{shot}"))
    assert "{shot}" in str(caught.value)
    assert isinstance(caught.value.__cause__, ConfigError)
    assert "check --checkout-path" not in str(caught.value.__cause__)


def test_the_command_line_server_comes_from_the_flag_else_the_environment() -> None:
    env = {settings.ENV_SERVER_URL: " http://env-farm:8080 "}
    assert settings.command_line_server("http://flag:1", env) == ("http://flag:1", CLI_NAMES)
    url, names = settings.command_line_server(None, env)
    assert url == "http://env-farm:8080" and names.server_url == "$SHAMAN_SERVER_URL"
    with pytest.raises(ConfigError, match=r"check \$SHAMAN_SERVER_URL\."):
        settings.resolve_server_url("farm:8080", names)
    assert settings.command_line_server(None, {})[0] == ""
    assert settings.environment_server_url({}) == ""


def test_blenders_online_access_applies_only_when_given() -> None:
    public = "http://93.184.216.34:8080"
    assert settings.resolve_server_url(public, BLENDER_NAMES) == public
    assert settings.resolve_server_url(public, BLENDER_NAMES, online_access=True) == public
    with pytest.raises(OnlineAccessRefused, match="Allow Online Access"):
        settings.resolve_server_url(public, BLENDER_NAMES, online_access=False)
    local = settings.resolve_server_url("http://127.0.0.1:8080/", BLENDER_NAMES,
                                        online_access=False)
    assert local == "http://127.0.0.1:8080"
