"""Blender's "Allow Online Access" applied to a Shaman server URL.

A render farm normally sits on the studio network, so a server whose host resolves only
to loopback, private or link-local addresses counts as local and is always allowed. Any
other host is "online" and needs the artist's permission (``bpy.app.online_access``).
Kept free of ``bpy`` so the rule is tested on plain Python.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

# getaddrinfo-shaped: (host, port) -> list of address strings
Resolver = Callable[[str], Iterable[str]]

HOW_TO_ENABLE = (
    "Turn on Edit > Preferences > System > Network > Allow Online Access "
    "(or start Blender with --online-mode in the background)"
)


@dataclass(frozen=True)
class PolicyDecision:
    """Whether a URL may be contacted, and the sentence for the artist when not."""

    allowed: bool
    local: bool
    host: str
    message: str = ""


def system_resolver(host: str) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6), as strings."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def host_of(url: str) -> str:
    """The host part of ``url`` without brackets or port; '' when there is none."""
    try:
        return urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""


def is_local_address(address: str) -> bool:
    """Loopback, private (RFC 1918, unique-local IPv6) or link-local."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private or ip.is_link_local


def is_local_host(host: str, *, resolve: Resolver = system_resolver) -> bool:
    """True when ``host`` is a literal local address or resolves ONLY to local ones.

    A name that does not resolve is not proven local, so it is not local.
    """
    if not host:
        return False
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return is_local_address(host)
    try:
        addresses = list(resolve(host))
    except (OSError, UnicodeError) as exc:
        log.debug("could not resolve %s: %s", host, exc)
        return False
    return bool(addresses) and all(is_local_address(a) for a in addresses)


def decide(url: str, *, online_access: bool, resolve: Resolver = system_resolver) -> PolicyDecision:
    """May this add-on contact ``url`` given Blender's online-access setting?"""
    host = host_of(url)
    local = is_local_host(host, resolve=resolve)
    if local or online_access:
        return PolicyDecision(allowed=True, local=local, host=host)
    message = (
        f"The Shaman server {url} is not on the local network (its host {host or '?'} "
        "does not resolve only to loopback, private or link-local addresses), and Blender's "
        f"online access is off. {HOW_TO_ENABLE}."
    )
    return PolicyDecision(allowed=False, local=False, host=host, message=message)
