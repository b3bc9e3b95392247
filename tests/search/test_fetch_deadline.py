"""SEARCH_URL_DEADLINE: one wall-clock limit over a whole URL fetch, against local servers that trickle.

Each server sends a byte or a header line every 0.3 s, well inside the per-read timeout, so only a total
deadline can end the request. The servers give up after TRICKLE_FOR seconds, so a broken deadline
shows as a failed test rather than a hung suite.
"""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from search.fetch import UrlFetchError, fetch_image_url

DEADLINE = 1.5
MARGIN = 3.0  # a correctness bound for a loaded machine, not a speed goal
STEP = 0.3
TRICKLE_FOR = 12.0


class _TrickleHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        routes = {"/body": self._trickle_body, "/headers": self._trickle_headers, "/hop": self._slow_hop}
        try:
            routes[self.path]()
        except OSError:
            # Our client went away: record when, to show the deadline really closed the connection.
            self.server.client_left.set()

    def _trickle(self, piece: bytes) -> None:
        ends = time.monotonic() + TRICKLE_FOR
        while time.monotonic() < ends and not self.server.stopping.wait(STEP):
            self.wfile.write(piece)
            self.wfile.flush()

    def _trickle_body(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Connection", "close")
        self.end_headers()  # no Content-Length: the body ends when the server closes
        self.wfile.write(b"\xff")
        self._trickle(b"\0")

    def _trickle_headers(self) -> None:
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self._trickle(b"X-Slow: still here\r\n")

    def _slow_hop(self) -> None:
        # Every hop answers inside the per-read timeout; only their sum is too slow.
        self.server.stopping.wait(STEP * 2)
        self.send_response(302)
        self.send_header("Location", "/hop")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def trickle_server(settings) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.daemon_threads = True
    server.stopping = threading.Event()
    server.client_left = threading.Event()
    port = server.server_address[1]
    settings.SEARCH_URL_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]  # vetting relaxed for this server only
    settings.SEARCH_URL_TIMEOUT = 5  # per read: the trickles never trip it
    settings.SEARCH_URL_DEADLINE = DEADLINE
    settings.SEARCH_URL_MAX_REDIRECTS = 20  # 20 hops of 0.6 s: only the total deadline stops them
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.base = f"http://127.0.0.1:{port}"
    yield server
    server.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def _timed_fetch(url: str) -> tuple[UrlFetchError, float]:
    started = time.monotonic()
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(url)
    return info.value, time.monotonic() - started


@pytest.mark.parametrize("path", ["/body", "/headers", "/hop"], ids=["body", "headers", "redirects"])
def test_trickling_server_is_cut_off_at_the_deadline(trickle_server, path):
    error, elapsed = _timed_fetch(f"{trickle_server.base}{path}")
    assert error.code == "timeout", error.message
    assert str(error) == "could not fetch: timed out"
    assert error.status_code == 400
    assert DEADLINE - 0.1 <= elapsed < DEADLINE + MARGIN


@pytest.mark.parametrize("path", ["/body", "/headers"])
def test_the_connection_is_closed_at_the_deadline(trickle_server, path):
    # The request must not stay open on the remote side after we gave up on it.
    _timed_fetch(f"{trickle_server.base}{path}")
    assert trickle_server.client_left.wait(MARGIN)


@pytest.mark.django_db
def test_api_answers_a_trickling_url_with_timeout_json(client, trickle_server):
    started = time.monotonic()
    response = client.post(
        "/api/v1/search/", {"url": f"{trickle_server.base}/body"}, content_type="application/json"
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 400
    assert response.json() == {"detail": "could not fetch: timed out", "code": "timeout"}
    assert elapsed < DEADLINE + MARGIN
