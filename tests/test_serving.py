"""The production shape as an operator runs it: the real gunicorn with gunicorn.conf.py, DJANGO_DEBUG
off, static files collected by `collectstatic` (hashed, gzip and brotli) and served by WhiteNoise,
uploaded media by Django (shop_search.media). The server runs as its own process on a free port of
127.0.0.1 against a temporary SQLite database and var/ folder, and is always stopped at the end."""

import gzip
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import brotli
import pytest

from tests.test_demo import processes_mentioning

BASE_DIR = Path(__file__).resolve().parent.parent
STATIC_SOURCES = BASE_DIR / "static"
CLEARED = {"DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT", "STATIC_ROOT"}
YEAR = 365 * 24 * 3600
HASHED_ASSET = re.compile(r"^/static/(?P<stem>.+)\.(?P<hash>[0-9a-f]{12})\.(?P<ext>css|js)$")


@dataclass(frozen=True)
class Site:
    url: str
    var_dir: Path
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def site_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        DJANGO_DEBUG="0",
        SECRET_KEY="serving-test-secret-key-not-for-production",
        SHOP_SEARCH_VAR_DIR=str(var_dir),
        ALLOWED_HOSTS="127.0.0.1",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SEARCH_ALLOW_DOWNLOAD="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(var_dir: Path, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=site_env(var_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, f"gunicorn exited ({server.returncode}):\n{log.read_text()}"
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError(f"gunicorn did not answer on {url} within 120 s:\n{log.read_text()}")


def stop(server: subprocess.Popen) -> None:
    """TERM the whole group (master and workers), then KILL what is left."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def gunicorn_site(tmp_path_factory) -> Iterator[Site]:
    var_dir = tmp_path_factory.mktemp("serving-var")
    manage(var_dir, "migrate", "--no-input")
    manage(var_dir, "collectstatic", "--no-input")
    media = var_dir / "media"
    (media / "products" / "ab").mkdir(parents=True)
    (media / "products" / "ab" / "abcd.jpg").write_bytes((STATIC_SOURCES / "css" / "shop.css").read_bytes())
    (media / "queries" / "2026-12-01").mkdir(parents=True)
    (media / "queries" / "2026-12-01" / "shopper.jpg").write_bytes(b"a shopper's photo")
    (var_dir / "secret.txt").write_text("outside the media folder")

    port = free_port()
    log = var_dir / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"],
            cwd=BASE_DIR,
            env=site_env(var_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the workers are stopped with the master
        )
    try:
        site = Site(url=f"http://127.0.0.1:{port}", var_dir=var_dir, log=log)
        wait_until_up(site.url + "/", server, log)
        yield site
    finally:
        stop(server)


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def page_assets(html: str) -> list[str]:
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)
    scripts = re.findall(r'<script[^>]* src="([^"]+)"', html)
    assert stylesheets and scripts, html
    return stylesheets + scripts


def max_age(cache_control: str) -> int:
    match = re.search(r"max-age=(\d+)", cache_control)
    return int(match.group(1)) if match else 0


def test_gunicorn_serves_the_shop_page_with_debug_off(gunicorn_site):
    status, headers, body = fetch(gunicorn_site.url + "/")

    assert status == 200
    assert headers["server"].startswith("gunicorn")
    assert "Shop by photo" in body.decode()
    # One access-log line per request, on gunicorn's stdout.
    assert re.search(r'"GET / HTTP/1\.1" 200 \d+', gunicorn_site.log.read_text())


@pytest.mark.parametrize("path", ["/", "/admin/login/", "/api/v1/docs/", "/api/v1/redoc/"])
def test_every_static_file_a_page_links_to_is_served(gunicorn_site, path):
    """The admin's and the API docs' files too: with DEBUG off a name missing from the manifest is a 500."""
    status, _, body = fetch(gunicorn_site.url + path)
    linked = set(re.findall(r'(?:href|src)="(/static/[^"?#]+)', body.decode()))

    assert status == 200, body[:500]
    assert linked, path
    for asset in linked:
        asset_status, headers, _ = fetch(gunicorn_site.url + asset)
        assert asset_status == 200, asset
        assert max_age(headers["cache-control"]) >= YEAR, asset


def test_favicon_is_served_hashed_and_cached_by_whitenoise(gunicorn_site):
    with urllib.request.urlopen(gunicorn_site.url + "/favicon.ico", timeout=30) as response:  # follows
        status, final_url, body = response.status, response.url, response.read()
        content_type, cache_control = response.headers["Content-Type"], response.headers["Cache-Control"]

    assert status == 200
    assert re.search(r"/static/favicon\.[0-9a-f]{12}\.ico$", final_url), final_url
    assert content_type in ("image/x-icon", "image/vnd.microsoft.icon")
    assert body[:4] == b"\x00\x00\x01\x00"  # the ICO signature
    assert max_age(cache_control) >= YEAR


def test_css_and_js_have_hashed_names_long_cache_and_gzip_and_brotli(gunicorn_site):
    _, _, body = fetch(gunicorn_site.url + "/")
    assets = page_assets(body.decode())

    assert {HASHED_ASSET.match(a)["ext"] for a in assets} == {"css", "js"}, assets
    for asset in assets:
        source = STATIC_SOURCES / f"{HASHED_ASSET.match(asset)['stem']}.{HASHED_ASSET.match(asset)['ext']}"
        plain_status, plain, content = fetch(gunicorn_site.url + asset, **{"Accept-Encoding": "identity"})
        gz_status, gz, gz_body = fetch(gunicorn_site.url + asset, **{"Accept-Encoding": "gzip"})
        br_status, br, br_body = fetch(gunicorn_site.url + asset, **{"Accept-Encoding": "br, gzip"})

        assert (plain_status, gz_status, br_status) == (200, 200, 200), asset
        # Module imports inside JS are rewritten to hashed names; otherwise the file is the source.
        assert re.sub(rb"\.[0-9a-f]{12}\.js\b", b".js", content) == source.read_bytes(), asset
        assert "content-encoding" not in plain
        assert max_age(plain["cache-control"]) >= YEAR and "immutable" in plain["cache-control"]
        assert gz["content-encoding"] == "gzip" and gzip.decompress(gz_body) == content
        assert br["content-encoding"] == "br" and brotli.decompress(br_body) == content
        assert "Accept-Encoding" in br["vary"]


def test_es_module_imports_are_hashed_too(gunicorn_site):
    """The shopper page's entry module imports the others: they are rewritten to hashed names, so a new
    deploy can never pair a fresh main.js with a stale, long-cached module."""
    _, _, body = fetch(gunicorn_site.url + "/")
    main = next(a for a in page_assets(body.decode()) if "/js/shop/main." in a)
    _, _, source = fetch(gunicorn_site.url + main, **{"Accept-Encoding": "identity"})
    imports = re.findall(r'from "([^"]+)"', source.decode())
    assert imports, source[:300]
    for name in imports:
        assert re.search(r"\.[0-9a-f]{12}\.js$", name), name
        status, headers, _ = fetch(gunicorn_site.url + "/static/js/shop/" + name.removeprefix("./"))
        assert status == 200 and "immutable" in headers["cache-control"], name


def test_gunicorn_serves_product_media_but_not_private_media_or_paths_outside(gunicorn_site):
    status, headers, body = fetch(gunicorn_site.url + "/media/products/ab/abcd.jpg")
    assert status == 200
    assert body == (STATIC_SOURCES / "css" / "shop.css").read_bytes()
    assert headers["cache-control"].startswith("public") and max_age(headers["cache-control"]) > 0
    assert "last-modified" in headers

    for hidden in (
        "/media/queries/2026-12-01/shopper.jpg",  # kept query photos: staff only
        "/media/products/..%2F..%2Fsecret.txt",
        "/media/..%2Fsecret.txt",
        "/media/%2E%2E/secret.txt",
    ):
        status, _, body = fetch(gunicorn_site.url + hidden)
        assert status == 404, hidden
        assert b"shopper" not in body and b"outside the media folder" not in body


def test_make_serve_runs_gunicorn_under_run_demo_and_ctrl_c_stops_it(gunicorn_site):
    """`make serve` ends in `run_demo --server gunicorn`: the same supervisor as the demo."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_demo", "--server", "gunicorn", "--no-worker", "--port", str(port)],
        cwd=BASE_DIR,
        env=site_env(gunicorn_site.var_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "shop_search is running at" in line:
                break
        status, headers, _ = fetch(f"http://127.0.0.1:{port}/")
        assert status == 200 and headers["server"].startswith("gunicorn"), "".join(lines)
        assert len(processes_mentioning(f"127.0.0.1:{port}")) >= 3  # master and 2 workers

        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0, output
    assert "Stopped." in output
    assert processes_mentioning(f"127.0.0.1:{port}") == []


@pytest.mark.browser
def test_page_served_by_gunicorn_is_styled_and_runs_its_scripts(gunicorn_site, browser, screenshot):
    browser.get(gunicorn_site.url + "/")

    style = browser.execute_script(
        "const body = getComputedStyle(document.body);"
        "const header = getComputedStyle(document.querySelector('.site-header'));"
        "return {margin: body.marginTop, display: body.display,"
        " canvas: getComputedStyle(document.documentElement).backgroundColor,"
        " headerBorder: header.borderBottomStyle};"
    )
    # Browser defaults: body margin 8px, display block, transparent page, no header border.
    assert style == {
        "margin": "0px",
        "display": "flex",
        "canvas": "rgb(245, 246, 249)",
        "headerBorder": "solid",
    }
    # shop.js marks the page as enhanced; crop-box.js defines the crop box it uses.
    assert browser.execute_script("return document.documentElement.classList.contains('has-js')")
    # The entry module ran and pulled in its (hashed) imports: the page is ES modules since the split.
    modules = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(n => n.includes('/js/shop/'))"
    )
    assert len(modules) >= 5 and all(re.search(r"\.[0-9a-f]{12}\.js$", name) for name in modules), modules
    screenshot("gunicorn")
