"""Fetching a query photo from a URL the shopper gave, without letting the URL reach inside our network.

Server-side request forgery defences, in order:
- only http and https, no credentials in the URL;
- the host is resolved once and refused if ANY of its addresses is not a public unicast address
  (loopback, private, link-local, multicast, reserved, unspecified, shared or IPv4-mapped forms);
- the connection goes to that vetted address (pinned), so a second DNS answer cannot swap in an
  internal one (DNS rebinding); https still sends SNI and verifies the certificate for the host name;
- redirects are followed by hand, at most SEARCH_URL_MAX_REDIRECTS, each one vetted the same way;
- connect and read timeouts, and a byte cap while streaming (Content-Length is checked first).
SEARCH_URL_ALLOWED_HOSTS lists "host" or "host:port" entries allowed to be private (tests).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings

from search.uploads import QueryImageError

USER_AGENT = "shop_search/1.0 (+visual product search)"
_REDIRECTS = {301, 302, 303, 307, 308}


class UrlFetchError(QueryImageError):
    """A URL that could not be used as a query photo. `code` is stable; `message` is for people.

    Problems with the remote site are still the shopper's URL: 4xx, 413 for our size limit."""

    STATUS = {"too_large": 413}


@dataclass(frozen=True)
class VettedUrl:
    scheme: str
    host: str
    port: int
    address: str  # the resolved IP the connection is pinned to
    target: str  # path and query sent in the request line
    host_header: str


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


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
    host_header = parts.hostname if default_port else f"{parts.hostname}:{port}"
    if ":" in host and not default_port:
        host_header = f"[{host}]:{port}"
    return VettedUrl(parts.scheme, host, port, addresses[0], target, host_header)


def _pool(vetted: VettedUrl, timeout: float) -> urllib3.connectionpool.HTTPConnectionPool:
    timeouts = urllib3.Timeout(connect=timeout, read=timeout)
    if vetted.scheme == "https":
        # Connect to the vetted IP, but do TLS (SNI and certificate check) for the host name.
        return urllib3.HTTPSConnectionPool(
            vetted.address,
            vetted.port,
            timeout=timeouts,
            retries=False,
            maxsize=1,
            server_hostname=vetted.host,
            assert_hostname=vetted.host,
            cert_reqs="CERT_REQUIRED",
        )
    return urllib3.HTTPConnectionPool(vetted.address, vetted.port, timeout=timeouts, retries=False, maxsize=1)


def _read_capped(response: urllib3.BaseHTTPResponse, max_bytes: int) -> bytes:
    too_large = UrlFetchError("too_large", f"could not fetch: too large (limit {max_bytes // 1024} KB)")
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    buf = bytearray()
    for chunk in response.stream(64 * 1024, decode_content=False):
        buf += chunk
        if len(buf) > max_bytes:
            raise too_large
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
        raise UrlFetchError("timeout", "could not fetch: timed out") from exc
    except urllib3.exceptions.SSLError as exc:
        raise UrlFetchError("unreachable", "could not fetch: the site's certificate is not valid") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise UrlFetchError("unreachable", "could not fetch: the site did not answer") from exc


def _fetch_once(url: str, timeout: float, max_bytes: int) -> tuple[bytes | None, str | None]:
    """One vetted request: (body, None) on success or (None, next_url) for a redirect."""
    vetted = vet_url(url)
    pool = _pool(vetted, timeout)
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
            return _read_body(response, max_bytes), None
        finally:
            response.close()
    finally:
        pool.close()


def _read_body(response: urllib3.BaseHTTPResponse, max_bytes: int) -> bytes:
    try:
        data = _read_capped(response, max_bytes)
    except (urllib3.exceptions.ReadTimeoutError, TimeoutError) as exc:
        raise UrlFetchError("timeout", "could not fetch: timed out") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise UrlFetchError("unreachable", "could not fetch: the download broke off") from exc
    if not data:
        raise UrlFetchError("empty", "could not fetch: the URL returned no data")
    return data


def fetch_image_url(url: str) -> bytes:
    """Download the photo at `url` (following vetted redirects) and return its bytes.

    The bytes are not checked as a picture here: pass them to search.uploads.decode_query_image.
    """
    timeout = float(settings.SEARCH_URL_TIMEOUT)
    for _hop in range(settings.SEARCH_URL_MAX_REDIRECTS + 1):
        data, url = _fetch_once(url, timeout, settings.SEARCH_QUERY_MAX_BYTES)
        if data is not None:
            return data
    raise UrlFetchError("too_many_redirects", "could not fetch: too many redirects")
