"""SSRF-safe URL fetching: refusals happen before any connection; success only via a local test server."""

import gzip
import ipaddress
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from search import fetch
from search.fetch import UrlFetchError, fetch_image_url, vet_url


class _PhotoHandler(BaseHTTPRequestHandler):
    """Serves /photo.jpg, redirects, an endless body and a slow answer for the tests."""

    routes: dict = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.requests.append((self.path, self.headers.get("Host")))
        route = self.routes.get(self.path)
        if route is None:
            self.send_response(404)
            self.end_headers()
            return
        route(self)

    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def photo_server(settings, photo_bytes) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PhotoHandler)
    server.requests = []
    port = server.server_address[1]
    settings.SEARCH_URL_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]
    settings.SEARCH_URL_TIMEOUT = 2
    apple = photo_bytes("apple.jpg")

    def send(handler, status: int, body: bytes = b"", **headers) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def endless(handler) -> None:
        handler.send_response(200)
        handler.end_headers()  # no Content-Length: the cap must hold while streaming
        try:
            for _ in range(1000):
                handler.wfile.write(b"\0" * 65536)
        except OSError:
            pass

    def slow(handler) -> None:
        server.stop_slow.wait(5)
        send(handler, 200, apple)

    server.gzip_bomb = b""  # set by the test that needs it
    server.stop_slow = threading.Event()
    _PhotoHandler.routes = {
        "/apple.jpg": lambda h: send(h, 200, apple, Content_Type="image/jpeg"),
        "/hop": lambda h: send(h, 302, Location="/apple.jpg"),
        "/loop": lambda h: send(h, 302, Location="/loop"),
        "/to-private": lambda h: send(h, 302, Location="http://10.0.0.1/apple.jpg"),
        "/to-metadata": lambda h: send(h, 301, Location="http://169.254.169.254/latest/meta-data/"),
        "/to-other-port": lambda h: send(h, 302, Location="http://127.0.0.1:1/apple.jpg"),
        "/to-localhost": lambda h: send(h, 307, Location=f"http://localhost:{port}/apple.jpg"),
        "/big": lambda h: send(h, 200, b"\0" * 2048),
        "/endless": endless,
        "/slow": slow,
        "/missing": lambda h: send(h, 404, b"nope"),
        "/gzip-bomb": lambda h: send(h, 200, server.gzip_bomb, Content_Encoding="gzip"),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.base = f"http://127.0.0.1:{port}"
    yield server
    server.stop_slow.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def no_connect(monkeypatch):
    """Fail the test if anything tries to open a connection (refusals must come first)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(fetch.download, "_pool", refuse)


def test_fetches_photo_from_allowed_local_server(photo_server, photo_bytes):
    data = fetch_image_url(f"{photo_server.base}/apple.jpg")
    assert data == photo_bytes("apple.jpg")
    # The request carried the original Host header even though the socket was pinned to the IP.
    assert photo_server.requests[-1] == ("/apple.jpg", photo_server.base.removeprefix("http://"))


def test_follows_a_vetted_redirect(photo_server, photo_bytes):
    assert fetch_image_url(f"{photo_server.base}/hop") == photo_bytes("apple.jpg")
    assert [path for path, _ in photo_server.requests] == ["/hop", "/apple.jpg"]


@pytest.mark.parametrize(
    "path", ["/to-private", "/to-metadata", "/to-other-port", "/to-localhost"], ids=str.strip
)
def test_redirect_to_private_address_is_refused(photo_server, path):
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(f"{photo_server.base}{path}")
    assert info.value.code == "private_address"
    assert str(info.value) == "URL points to a private address."
    assert len(photo_server.requests) == 1  # the private target was never contacted


def test_redirect_loop_stops_after_the_limit(photo_server, settings):
    settings.SEARCH_URL_MAX_REDIRECTS = 3
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(f"{photo_server.base}/loop")
    assert info.value.code == "too_many_redirects"
    assert len(photo_server.requests) == 4


def test_declared_oversized_body_is_refused(photo_server, settings):
    settings.SEARCH_QUERY_MAX_BYTES = 1024
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(f"{photo_server.base}/big")
    assert info.value.code == "too_large"
    assert info.value.status_code == 413


def test_streamed_body_is_capped(photo_server, settings):
    settings.SEARCH_QUERY_MAX_BYTES = 200_000
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(f"{photo_server.base}/endless")
    assert info.value.code == "too_large"
    assert "too large" in str(info.value)


def test_slow_server_times_out(photo_server, settings):
    settings.SEARCH_URL_TIMEOUT = 0.3
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(f"{photo_server.base}/slow")
    assert info.value.code == "timeout"
    assert str(info.value) == "could not fetch: timed out"


def test_compressed_body_is_not_inflated(photo_server, settings):
    # A 50 MB gzip bomb sent with Content-Encoding: gzip stays ~50 KB: we asked for identity and
    # never decode, so the byte cap applies to what actually crossed the wire.
    settings.SEARCH_QUERY_MAX_BYTES = 1_000_000
    photo_server.gzip_bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)
    data = fetch_image_url(f"{photo_server.base}/gzip-bomb")
    assert data == photo_server.gzip_bomb and len(data) < 1_000_000


def test_http_error_status_is_reported(photo_server):
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(f"{photo_server.base}/missing")
    assert "HTTP 404" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1/photo.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/photo.jpg",
        "http://[::1]/photo.jpg",
        "http://[::ffff:127.0.0.1]/photo.jpg",
        "http://0.0.0.0/",
        "http://192.168.1.10:8080/x.png",
        "https://172.16.0.1/x.png",
        "http://224.0.0.1/",
        "http://100.64.0.1/",
        "http://2130706433/",  # 127.0.0.1 written as one decimal number
    ],
)
def test_private_addresses_are_refused_before_connecting(url, no_connect):
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(url)
    assert info.value.code == "private_address"
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/photo.jpg", "bad_scheme"),
        ("file:///etc/passwd", "bad_scheme"),
        ("gopher://127.0.0.1:6379/_INFO", "bad_scheme"),
        ("http://user:secret@example.com/x.jpg", "bad_url"),
        ("http:///nohost.jpg", "bad_url"),
        ("http://example.com:99999/x.jpg", "bad_url"),
        ("http://no-such-host.invalid/x.jpg", "unresolvable"),
    ],
)
def test_bad_urls_are_refused_before_connecting(url, code, no_connect, monkeypatch):
    def unknown_host(host, port, **kwargs):
        if host in {"example.com", "no-such-host.invalid"}:  # no DNS query leaves this machine
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        raise AssertionError(f"resolved {host}")

    monkeypatch.setattr(socket, "getaddrinfo", unknown_host)
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(url)
    assert info.value.code == code


def test_allowlist_entry_with_port_does_not_open_other_ports(settings, no_connect):
    settings.SEARCH_URL_ALLOWED_HOSTS = ["127.0.0.1:8000"]
    with pytest.raises(UrlFetchError):
        vet_url("http://127.0.0.1:8001/x.jpg")


def test_public_host_is_pinned_to_its_vetted_address(monkeypatch):
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, port, **kw: [(socket.AF_INET, 1, 6, "", ("93.184.215.14", port))]
    )
    vetted = vet_url("https://shop.example:8443/p/1.jpg?size=large")
    assert (vetted.address, vetted.host, vetted.port) == ("93.184.215.14", "shop.example", 8443)
    assert vetted.target == "/p/1.jpg?size=large"
    assert vetted.host_header == "shop.example:8443"


def test_host_with_any_private_address_is_refused(monkeypatch):
    # A DNS answer mixing a public and an internal address is refused as a whole.
    answers = [("93.184.215.14", 80), ("10.1.2.3", 80)]
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, port, **kw: [(socket.AF_INET, 1, 6, "", a) for a in answers]
    )
    with pytest.raises(UrlFetchError) as info:
        vet_url("http://mixed.example/x.jpg")
    assert info.value.code == "private_address"


# --- IPv4 embedded in IPv6: what a tunnel or translator would deliver to must be public too ---
def _resolves_to(monkeypatch, address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda host, port, **kw: [(family, socket.SOCK_STREAM, 6, "", (address, port))]
    )


@pytest.mark.parametrize(
    "address",
    [
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of the metadata address 169.254.169.254
        "64:ff9b::7f00:1",  # NAT64 (well-known prefix) of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::c0a8:101",  # local-use NAT64, /96, of 192.168.1.1
        "64:ff9b:1:7f00:0:100::",  # local-use NAT64, /48, of 127.0.0.1
        "2001:0:5db8:d70e::80ff:fffe",  # Teredo: public server, client 127.0.0.1
        "2001:0:a00:1::a247:28f1",  # Teredo: server 10.0.0.1, public client
        "2001:0:5db8:d70e::a247:28f1",  # Teredo with both public: a special range all the same
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::5db8:d70e",  # IPv4-compatible, even of a public address: deprecated, special
        "::ffff:a00:1",  # IPv4-mapped 10.0.0.1
    ],
)
def test_ipv6_embedding_a_private_ipv4_is_refused_before_connecting(monkeypatch, no_connect, address):
    _resolves_to(monkeypatch, address)
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url("http://photos.example/x.jpg")
    assert info.value.code == "private_address"


@pytest.mark.parametrize(
    "address",
    [
        "2606:2800:220:1:248:1893:25c8:1946",  # plain global IPv6
        "2002:5db8:d70e::1",  # 6to4 of 93.184.215.14
        "64:ff9b::5db8:d70e",  # NAT64 of 93.184.215.14, as DNS64 answers on an IPv6-only network
        "::ffff:5db8:d70e",  # IPv4-mapped 93.184.215.14
    ],
)
def test_ipv6_leading_to_a_public_address_passes_vetting(monkeypatch, address):
    _resolves_to(monkeypatch, address)
    assert vet_url("http://photos.example/x.jpg").address == address


@pytest.mark.parametrize(
    ("address", "prefix_length"),
    [  # the examples of RFC 6052, section 2.4: 192.0.2.33 behind prefixes of each length
        ("2001:db8:122:c000:2:2100::", 48),
        ("2001:db8:122:3c0:0:221::", 56),
        ("2001:db8:122:344:c0:2:2100:0", 64),
        ("2001:db8:122:344::192.0.2.33", 96),
    ],
)
def test_nat64_addresses_are_read_as_rfc_6052_places_them(address, prefix_length):
    ip = int(ipaddress.ip_address(address))
    assert str(fetch.addresses._rfc6052_ipv4(ip, prefix_length)) == "192.0.2.33"


def test_ipv6_literal_keeps_its_brackets_in_the_host_header(monkeypatch):
    _resolves_to(monkeypatch, "2606:2800:220:1:248:1893:25c8:1946")
    assert vet_url("http://[2606:2800:220:1:248:1893:25c8:1946]/x.jpg").host_header == (
        "[2606:2800:220:1:248:1893:25c8:1946]"
    )


# --- https: pinned to the vetted address, with SNI and certificate checks for the host name ---
def _self_signed(tmp_path, host: str):
    cert, key = tmp_path / f"{host}.pem", tmp_path / f"{host}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=DNS:{host}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def https_server(tmp_path, settings, photo_bytes, monkeypatch):
    """An https server on 127.0.0.1 whose certificate is for shop.test; shop.test resolves to it."""
    cert, key = _self_signed(tmp_path, "shop.test")
    _PhotoHandler.routes = {"/apple.jpg": _send_photo(photo_bytes("apple.jpg"))}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PhotoHandler)
    server.requests = []
    server.server_names = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server.server_names.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host in {"shop.test", "other.test"}:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    settings.SEARCH_URL_ALLOWED_HOSTS = [f"shop.test:{port}", f"other.test:{port}"]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.port, server.cert = port, cert
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _send_photo(data: bytes):
    def send(handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return send


def test_https_is_pinned_and_verifies_the_host_name(https_server, monkeypatch, photo_bytes):
    monkeypatch.setenv("SSL_CERT_FILE", str(https_server.cert))  # trust the test certificate only
    data = fetch_image_url(f"https://shop.test:{https_server.port}/apple.jpg")
    assert data == photo_bytes("apple.jpg")
    assert https_server.server_names == ["shop.test"]  # SNI carried the name, not the pinned IP
    assert https_server.requests == [("/apple.jpg", f"shop.test:{https_server.port}")]


def test_https_certificate_for_another_name_is_refused(https_server, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(https_server.cert))
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(f"https://other.test:{https_server.port}/apple.jpg")
    assert info.value.code == "unreachable" and "certificate" in str(info.value)
    assert https_server.requests == []


def test_https_untrusted_certificate_is_refused(https_server):
    with pytest.raises(UrlFetchError) as info:
        fetch_image_url(f"https://shop.test:{https_server.port}/apple.jpg")
    assert "certificate" in str(info.value)
    assert https_server.requests == []
