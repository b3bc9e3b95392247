"""Which URLs a query photo may be fetched from: scheme and host checks, and the resolved address
vetted as public (IPv4 embedded in IPv6 unwrapped). See search.fetch for the whole defence."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from search.uploads import QueryImageError

_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: only ever used with /96
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: the operator picks the length


class UrlFetchError(QueryImageError):
    """A URL that could not be used as a query photo. `code` is stable; `message` is for people.

    Problems with the remote site are still the shopper's URL: 4xx, 413 for our size limit."""


@dataclass(frozen=True)
class VettedUrl:
    scheme: str
    host: str
    port: int
    address: str  # the resolved IP the connection is pinned to
    target: str  # path and query sent in the request line
    host_header: str


def _is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _rfc6052_ipv4(value: int, prefix_length: int) -> ipaddress.IPv4Address:
    """The IPv4 address a NAT64 translator with a prefix of this length reads from an IPv6 address."""
    if prefix_length == 96:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    # Bits 64-71 (the "u" octet) never carry address bits: drop them, and the IPv4 address is the
    # 32 bits right after the prefix.
    without_u = (value >> 64 << 56) | (value & ((1 << 56) - 1))
    return ipaddress.IPv4Address((without_u >> (88 - prefix_length)) & 0xFFFFFFFF)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses a packet sent to `ip` may be delivered to by a tunnel or a translator."""
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)  # the relay server and the client behind it
    if ip in _NAT64_WELL_KNOWN or ip in _IPV4_COMPATIBLE:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip in _NAT64_LOCAL:
        # We cannot know the operator's prefix length, so every place the IPv4 address may sit counts.
        return [_rfc6052_ipv4(int(ip), length) for length in (48, 56, 64, 96)]
    return []


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _is_public_ip(ip.ipv4_mapped)  # an IPv4 address written as IPv6
        if not all(_is_public_ip(embedded) for embedded in _embedded_ipv4(ip)):
            return False
        if ip in _NAT64_WELL_KNOWN or ip in _NAT64_LOCAL:
            # On an IPv6-only network DNS64 answers every IPv4-only site with a NAT64 address; where
            # it leads (checked above) is what matters. The IPv6 prefix itself counts as reserved.
            return True
    # 6to4 must pass both checks; Teredo and IPv4-compatible addresses are special ranges of their
    # own and are refused here even when what they embed is public.
    return _is_public_ip(ip)


def _is_allowlisted(host: str, port: int) -> bool:
    allowed = {entry.lower() for entry in settings.SEARCH_URL_ALLOWED_HOSTS}
    return host in allowed or f"{host}:{port}" in allowed


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlFetchError("unresolvable", f"could not fetch: the host {host!r} was not found") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UrlFetchError("unresolvable", f"could not fetch: the host {host!r} was not found")
    return addresses


def vet_url(url: str) -> VettedUrl:
    """Check a URL and resolve its host; raise UrlFetchError unless it is safe to connect to."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlFetchError("bad_url", "The URL is not valid.") from exc
    if parts.scheme not in {"http", "https"}:
        raise UrlFetchError("bad_scheme", "Only http and https URLs can be searched.")
    if parts.username or parts.password:
        raise UrlFetchError("bad_url", "URLs with a user name or password are not accepted.")
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlFetchError("bad_url", "The URL has no host.")
    port = port or (443 if parts.scheme == "https" else 80)
    addresses = _resolve(host, port)
    if not _is_allowlisted(host, port) and not all(_is_public(address) for address in addresses):
        raise UrlFetchError("private_address", "URL points to a private address.")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = port == (443 if parts.scheme == "https" else 80)
    name = f"[{host}]" if ":" in host else parts.hostname  # an IPv6 literal keeps its brackets
    host_header = name if default_port else f"{name}:{port}"
    return VettedUrl(parts.scheme, host, port, addresses[0], target, host_header)
