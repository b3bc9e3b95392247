"""Fixtures shared by every test. Media goes to a per-test temporary folder; photos are real
(tests/photos, see its ATTRIBUTION.md) or built in memory with PIL; test data comes from
tests/factories.py. Each app's own fixtures live in its folder's conftest.py (tests/catalog,
tests/search, tests/browser); plain helpers (no fixtures) sit in modules next to them.
"""

import io
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.catalog_snapshot import catalog_for_test, snapshot_take
from tests.factories import PHOTOS_DIR, CategoryFactory, ProductFactory
from tests.vector_cache import VectorCache

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
VECTORS = VectorCache()

__all__ = ["IN_CI", "PHOTOS_DIR", "SHOP_CATALOG", "make_image_bytes", "require_service"]


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    from search.services.stores import forget_query_stores

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SEARCH_INDEX_DIR = tmp_path / "index"
    settings.CATALOG_IMPORT_DIR = tmp_path / "imports"
    # Vector stores held by this process belong to one database: tests roll theirs back.
    forget_query_stores()
    yield
    forget_query_stores()


@pytest.fixture(autouse=True)
def _projection_in_use_read_afresh():
    """Which projection is in use is remembered for a few seconds per process (search.embedder); each
    test's database is rolled back, so a test must not follow what the one before it read."""
    from search.embedder import forget_projection_in_use

    forget_projection_in_use()
    yield
    forget_projection_in_use()


# --- the real model, run once per distinct input (see tests/vector_cache.py) -------------------


@pytest.fixture(scope="session", autouse=True)
def _model_vectors_cached():
    """The site's embedder remembers the vectors the real model computed in this session."""
    import search.embedder
    import search.embedding

    real_build = search.embedding.build_embedder  # what search.embedder.current_embedder loads with
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search.embedding, "build_embedder", lambda config: VECTORS.wrap(real_build(config)))
        search.embedder.reset_embedder()  # one built before this session fixture would be unwrapped
        yield VECTORS


@pytest.fixture(autouse=True)
def _uncached_vectors(request):
    """@pytest.mark.uncached_vectors: the model runs for every input of this test (e.g. a test that
    compares a batched vector with a single one must compute both)."""
    if request.node.get_closest_marker("uncached_vectors") is None:
        yield
        return
    VECTORS.enabled = False
    try:
        yield
    finally:
        VECTORS.enabled = True


def pytest_terminal_summary(terminalreporter):
    if VECTORS.computed or VECTORS.reused:
        terminalreporter.write_line(
            f"model inputs: {VECTORS.computed} run through the real model, {VECTORS.reused} answered from "
            "earlier runs of this session (same model, same input; tests/vector_cache.py)"
        )


# --- photos ----------------------------------------------------------------------------------------


@pytest.fixture
def photo_path():
    """Path of a real photo from tests/photos by file name."""

    def _get(name: str) -> Path:
        path = PHOTOS_DIR / name
        assert path.exists(), f"missing test photo {name}"
        return path

    return _get


@pytest.fixture
def photo_bytes(photo_path):
    def _get(name: str) -> bytes:
        return photo_path(name).read_bytes()

    return _get


def make_image_bytes(
    size: tuple[int, int] = (64, 48), color=(200, 30, 30), fmt: str = "JPEG", mode: str = "RGB", **save
) -> bytes:
    image = Image.new(mode, size, color)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


@pytest.fixture
def image_bytes():
    """In-memory image of a given size, colour and format (plumbing tests, not search quality)."""
    return make_image_bytes


@pytest.fixture
def pixel_decoding_refused(monkeypatch):
    """Fails the test the moment Pillow starts decoding pixels (it creates a format's decoder only to
    read pixels; headers are parsed without one). Returns the decoders asked for, for assertions."""
    from PIL import Image as PILImage

    asked: list[str] = []

    def refuse(mode, decoder_name, *args, **kwargs):
        asked.append(decoder_name)
        raise AssertionError(f"pixels were decoded ({decoder_name} decoder, mode {mode})")

    monkeypatch.setattr(PILImage, "_getdecoder", refuse)
    return asked


def require_service(env_name: str) -> str:
    """URL of a real server that .ci/run starts. Missing in CI is a failure, locally a skip."""
    url = os.environ.get(env_name, "")
    if not url:
        if IN_CI:
            pytest.fail(f"{env_name} is not set: .ci/run must start the server this test needs")
        pytest.skip(f"{env_name} not set (run .ci/run or export it to test against the real server)")
    return url


# --- real servers (.ci/run starts them; tests/real_worker.py starts workers) -------------------------


@pytest.fixture
def real_broker():
    """Tasks enqueued by this test process go to the Redis of TEST_REDIS_URL (emptied before and after,
    so no test's leftover messages reach another test's worker). Yields the broker URL."""
    import redis
    from django.db import connection

    url = require_service("TEST_REDIS_URL")
    if connection.vendor != "postgresql":
        pytest.skip("needs a database the worker process can share: run via `make test-postgres`")
    from shop_search.celery import app

    previous = {"task_always_eager": app.conf.task_always_eager, "broker_url": app.conf.broker_url}
    client = redis.Redis.from_url(url)
    client.flushdb()
    app.conf.update(task_always_eager=False, broker_url=url)  # enqueue for real, to Redis
    try:
        yield url
    finally:
        app.conf.update(previous)
        client.flushdb()
        client.close()


# --- headless Chromium (tests/chromium.py) ---------------------------------------------------------


@pytest.fixture
def browser_javascript() -> bool:
    """Whether `browser` runs scripts; a test checks the no-JavaScript page with
    @pytest.mark.parametrize("browser_javascript", [False])."""
    return True


@pytest.fixture
def browser(tmp_path, browser_javascript):
    """Headless Chromium (missing: skip locally, fail in CI). A test whose pages logged a script error,
    a console.error or a failed load fails at teardown."""
    from tests.chromium import chromium_start, page_errors

    driver = chromium_start(tmp_path / "chromium-profile", javascript=browser_javascript)
    try:
        yield driver
        # After the test, so a script error anywhere in it fails it (as an error at teardown).
        problems = page_errors(driver)
        if problems:
            pytest.fail("the browser logged errors:\n" + "\n".join(problems))
    finally:
        driver.quit()


@pytest.fixture
def screenshot(browser, request):
    """screenshot(name) saves test-artifacts/<test>-<name>.png (git-ignored) for a person to look at."""
    from tests.chromium import ARTIFACTS, full_page_screenshot

    ARTIFACTS.mkdir(exist_ok=True)
    prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    return lambda name: full_page_screenshot(browser, ARTIFACTS / f"{prefix}-{name}.png")


# --- the shop catalog: built once per module, laid down for each test -------------------------------

# A small real catalog for page, admin and browser tests: (sku, name, price, category, photo in tests/photos).
SHOP_CATALOG = [
    ("HAM-1", "Claw hammer", "14.90", "Tools", "hammer1.webp"),
    ("SCI-1", "Paper scissors", "6.50", "Tools", "scissors1.webp"),
    ("PLI-1", "Combination pliers", "11.00", "Tools", "plier1.webp"),
    ("CUP-1", "Coffee cup", "7.95", "Kitchen", "cup.webp"),
    ("PAN-1", "Frying pan", "24.00", "Kitchen", "pan.webp"),
    ("CHA-1", "Wooden chair", "59.00", "Furniture", "chair.webp"),
    ("APL-1", "Red apple", "0.60", "Fruit", "apple.jpg"),
]


def shop_catalog_build() -> dict:
    """SHOP_CATALOG through the catalog services, embedded and published as an index: {sku: Product}."""
    from search.services import index_build_request, index_build_run

    products = {
        sku: ProductFactory(
            sku=sku, name=name, price=price, category=CategoryFactory(name=category), photos=[photo]
        )
        for sku, name, price, category, photo in SHOP_CATALOG
    }
    # The build embeds every photo still pending, then publishes the index the page searches.
    build = index_build_run(build_id=index_build_request(enqueue=False).pk)
    assert build.status == "succeeded", build.error
    return products


@pytest.fixture(scope="module")
def _shop_catalog_snapshot(django_db_setup, django_db_blocker, tmp_path_factory):
    return snapshot_take(shop_catalog_build, tmp_path_factory.mktemp("shop-catalog"), django_db_blocker)


@pytest.fixture
def shop_catalog(request, _isolated_media):
    """SHOP_CATALOG with a published index in this test's database and folders: {sku: Product}.
    Needs a database (mark the test django_db, transactional or not)."""
    return catalog_for_test(request, "_shop_catalog_snapshot", shop_catalog_build)


# --- object storage: moto's S3 server on 127.0.0.1 (tests/object_storage.py) -----------------------


@pytest.fixture(scope="session")
def moto_s3_server(tmp_path_factory):
    """The endpoint URL of moto's S3-compatible server, started on a free port for the session and
    stopped after it. Skipped (with the reason) only when moto is not installed; requirements.txt
    installs it, so CI runs these tests."""
    from tests.object_storage import moto_server_start, moto_server_stop

    server, url = moto_server_start(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield url
    finally:
        moto_server_stop(server)


@pytest.fixture
def s3_bucket(moto_s3_server, monkeypatch):
    """A new, empty bucket on the moto server: (endpoint URL, bucket name, S3Storage client options)."""
    from tests.object_storage import bucket_create

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # loopback, never through a proxy
    return bucket_create(moto_s3_server)
