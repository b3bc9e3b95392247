"""Downloading a vetted URL under one wall-clock deadline, with a byte cap, following vetted
redirects by hand. See search.fetch for the whole defence."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any
from urllib.parse import urljoin

import urllib3
from django.conf import settings

from .addresses import UrlFetchError, VettedUrl, vet_url

USER_AGENT = "shop_search/1.0 (+visual product search)"
_REDIRECTS = {301, 302, 303, 307, 308}


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
