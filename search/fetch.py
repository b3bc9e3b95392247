"""Fetching a query photo from a URL the shopper gave, without letting the URL reach inside our network.

Server-side request forgery defences, in order:
- only http and https, no credentials in the URL;
- the host is resolved once and refused if ANY of its addresses is not a public unicast address
  (loopback, private, link-local, multicast, reserved, unspecified or shared), IPv4 embedded in IPv6
  included: IPv4-mapped, IPv4-compatible, 6to4, Teredo (server and client) and NAT64 must all lead to a
  public IPv4 address;
- the connection goes to that vetted address (pinned), so a second DNS answer cannot swap in an
  internal one (DNS rebinding); https still sends SNI and verifies the certificate for the host name;
- redirects are followed by hand, at most SEARCH_URL_MAX_REDIRECTS, each one vetted the same way;
- connect and read timeouts, and a byte cap while streaming (Content-Length is checked first);
- one wall-clock deadline, SEARCH_URL_DEADLINE, over the whole fetch: every hop's connect, TLS, headers
  and body. Socket timeouts bound each read, not their sum, so on their own a host sending a byte at a
  time would hold the request open for ever.
SEARCH_URL_ALLOWED_HOSTS lists "host" or "host:port" entries allowed to be private (tests).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings

from search.uploads import QueryImageError

USER_AGENT = "shop_search/1.0 (+visual product search)"
_REDIRECTS = {301, 302, 303, 307, 308}
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


def _timed_out() -> UrlFetchError:
    return UrlFetchError("timeout", "could not fetch: timed out")


class _Deadline:
    """The wall-clock time one fetch may take, over every hop.

    Socket timeouts bound each read, not their sum: a host sending a byte every second, in its headers
    or its body, never trips them. So while a socket is open a timer stands by to shut it down at the
    deadline, which ends whatever read is blocked on it; the fetch then reports "timeout".
    """

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds
        self._fired = False
        self._lock = threading.Lock()
        self._watched: socket.socket | None = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self._fired or time.monotonic() >= self._end

    def remaining(self) -> float:
        """Seconds left; raises the "timeout" UrlFetchError when there are none."""
        left = self._end - time.monotonic()
        if left <= 0 or self._fired:
            raise _timed_out()
        return left

    def watch(self, sock: socket.socket) -> None:
        # Our own duplicate of the descriptor: urllib3 may close its socket at any time, and a closed
        # descriptor's number could be reused by another connection before the timer fires.
        with self._lock:
            self._release()
            self._watched = sock.dup()
        if self.expired:
            self._expire()

    def unwatch(self) -> None:
        with self._lock:
            self._release()

    def cancel(self) -> None:
        self._timer.cancel()
        self.unwatch()

    def _release(self) -> None:
        if self._watched is not None:
            self._watched.close()
            self._watched = None

    def _expire(self) -> None:
        with self._lock:
            self._fired = True
            if self._watched is not None:
                try:
                    self._watched.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # the other side closed it already


class _DeadlineConnection:
    """Hands each new socket to the fetch's deadline, before TLS, so a slow handshake is cut too."""

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._deadline.watch(sock)
        return sock


class _HTTPConnection(_DeadlineConnection, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineConnection, urllib3.connection.HTTPSConnection):
    pass


def _pool(vetted: VettedUrl, deadline: _Deadline) -> urllib3.connectionpool.HTTPConnectionPool:
    # No single connect or read may outlast the deadline either; the timer covers their sum.
    timeout = min(float(settings.SEARCH_URL_TIMEOUT), deadline.remaining())
    timeouts = urllib3.Timeout(connect=timeout, read=timeout)
    if vetted.scheme == "https":
        # Connect to the vetted IP, but do TLS (SNI and certificate check) for the host name.
        pool = urllib3.HTTPSConnectionPool(
            vetted.address,
            vetted.port,
            timeout=timeouts,
            retries=False,
            maxsize=1,
            server_hostname=vetted.host,
            assert_hostname=vetted.host,
            cert_reqs="CERT_REQUIRED",
            deadline=deadline,
        )
        pool.ConnectionCls = _HTTPSConnection
        return pool
    pool = urllib3.HTTPConnectionPool(
        vetted.address, vetted.port, timeout=timeouts, retries=False, maxsize=1, deadline=deadline
    )
    pool.ConnectionCls = _HTTPConnection
    return pool


def _read_capped(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: _Deadline) -> bytes:
    too_large = UrlFetchError("too_large", f"could not fetch: too large (limit {max_bytes // 1024} KB)")
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    buf = bytearray()
    for chunk in response.stream(64 * 1024, decode_content=False):
        buf += chunk
        if len(buf) > max_bytes:
            raise too_large
        deadline.remaining()
    # A body cut off by the deadline ends like one the server finished: it is not the photo.
    deadline.remaining()
    return bytes(buf)


def _request(pool: urllib3.connectionpool.HTTPConnectionPool, vetted: VettedUrl) -> urllib3.BaseHTTPResponse:
    # identity: photos are compressed already, and an undecoded body cannot be a gzip bomb.
    headers = {
        "Host": vetted.host_header,
        "User-Agent": USER_AGENT,
        "Accept": "image/*",
        "Accept-Encoding": "identity",
    }
    try:
        return pool.urlopen(
            "GET", vetted.target, headers=headers, redirect=False, retries=False, preload_content=False
        )
    except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError) as exc:
        raise _timed_out() from exc
    except urllib3.exceptions.SSLError as exc:
        raise UrlFetchError("unreachable", "could not fetch: the site's certificate is not valid") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise UrlFetchError("unreachable", "could not fetch: the site did not answer") from exc


def _fetch_once(url: str, max_bytes: int, deadline: _Deadline) -> tuple[bytes | None, str | None]:
    """One vetted request: (body, None) on success or (None, next_url) for a redirect."""
    vetted = vet_url(url)
    pool = _pool(vetted, deadline)
    try:
        response = _request(pool, vetted)
        try:
            if response.status in _REDIRECTS:
                location = response.headers.get("Location")
                if not location:
                    raise UrlFetchError("bad_status", "could not fetch: a redirect without a Location")
                return None, urljoin(url, location)
            if response.status != 200:
                message = f"could not fetch: the site answered HTTP {response.status}"
                raise UrlFetchError("bad_status", message)
            return _read_body(response, max_bytes, deadline), None
        finally:
            response.close()
    finally:
        deadline.unwatch()
        pool.close()


def _read_body(response: urllib3.BaseHTTPResponse, max_bytes: int, deadline: _Deadline) -> bytes:
    try:
        data = _read_capped(response, max_bytes, deadline)
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
        raise _timed_out() from exc
    except urllib3.exceptions.HTTPError as exc:
        raise UrlFetchError("unreachable", "could not fetch: the download broke off") from exc
    if not data:
        raise UrlFetchError("empty", "could not fetch: the URL returned no data")
    return data


def fetch_image_url(url: str) -> bytes:
    """Download the photo at `url` (following vetted redirects) and return its bytes.

    All of it, redirects included, must finish within SEARCH_URL_DEADLINE seconds.
    The bytes are not checked as a picture here: pass them to search.uploads.decode_query_image.
    """
    deadline = _Deadline(float(settings.SEARCH_URL_DEADLINE))
    try:
        for _hop in range(settings.SEARCH_URL_MAX_REDIRECTS + 1):
            try:
                data, url = _fetch_once(url, settings.SEARCH_QUERY_MAX_BYTES, deadline)
            except UrlFetchError as exc:
                if deadline.expired and exc.code != "timeout":
                    # The deadline cut the connection; what broke looks like the site's fault but is not.
                    raise _timed_out() from exc
                raise
            if data is not None:
                return data
    finally:
        deadline.cancel()
    raise UrlFetchError("too_many_redirects", "could not fetch: too many redirects")
