"""Blender's "Allow Online Access" applied to server URLs (netpolicy, plain Python)."""

from __future__ import annotations

import pytest

from shaman_addon.app import netpolicy


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://[::1]:8080/",
        "http://10.0.0.5:8080",
        "http://172.16.3.4",
        "http://192.168.1.20:8080",
        "http://169.254.10.10",
        "http://[fe80::1%25eth0]:8080",
        "http://[fd12:3456::1]",
        "http://[::ffff:192.168.0.9]",
        "http://localhost:8080",  # really resolved: loopback on every machine
    ],
)
def test_local_servers_are_allowed_with_online_access_off(url: str) -> None:
    decision = netpolicy.decide(url, online_access=False)
    assert decision.allowed and decision.local, decision
    assert decision.message == ""


@pytest.mark.parametrize("url", ["http://93.184.216.34", "https://8.8.8.8:443", "http://[2001:db9::1]"])
def test_public_server_is_refused_with_the_how_to(url: str) -> None:
    decision = netpolicy.decide(url, online_access=False)
    assert not decision.allowed and not decision.local
    assert url in decision.message
    assert "Preferences > System > Network > Allow Online Access" in decision.message
    assert "--online-mode" in decision.message


def test_public_server_is_allowed_when_online_access_is_on() -> None:
    decision = netpolicy.decide("http://93.184.216.34:8080", online_access=True)
    assert decision.allowed and not decision.local


def test_names_are_local_only_when_every_address_is() -> None:
    answers = {
        "farm.studio": ["10.1.2.3", "fd00::3"],
        "mixed.example": ["10.1.2.3", "93.184.216.34"],
        "empty.example": [],
    }

    def resolve(host: str) -> list[str]:
        if host not in answers:
            raise OSError(f"cannot resolve {host}")
        return answers[host]

    assert netpolicy.is_local_host("farm.studio", resolve=resolve)
    assert not netpolicy.is_local_host("mixed.example", resolve=resolve)
    assert not netpolicy.is_local_host("empty.example", resolve=resolve)
    assert not netpolicy.is_local_host("unknown.example", resolve=resolve)
    refused = netpolicy.decide("http://unknown.example:8080", online_access=False, resolve=resolve)
    assert not refused.allowed and "unknown.example" in refused.message
    allowed = netpolicy.decide("http://farm.studio:8080", online_access=False, resolve=resolve)
    assert allowed.allowed and allowed.local and allowed.host == "farm.studio"


def test_a_url_without_a_host_is_not_local() -> None:
    assert netpolicy.host_of("not a url") == ""
    assert not netpolicy.decide("not a url", online_access=False).allowed
