"""Fixtures shared by every test. Media goes to a per-test temporary folder; photos are real
(tests/photos, see its ATTRIBUTION.md) or built in memory with PIL."""

import io
import os
from pathlib import Path

import pytest
from PIL import Image

PHOTOS_DIR = Path(__file__).parent / "photos"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SEARCH_INDEX_DIR = tmp_path / "index"
    settings.CATALOG_IMPORT_DIR = tmp_path / "imports"


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


def require_service(env_name: str) -> str:
    """URL of a real server that .ci/run starts. Missing in CI is a failure, locally a skip."""
    url = os.environ.get(env_name, "")
    if not url:
        if IN_CI:
            pytest.fail(f"{env_name} is not set: .ci/run must start the server this test needs")
        pytest.skip(f"{env_name} not set (run .ci/run or export it to test against the real server)")
    return url


# A small real catalog for page and browser tests: (sku, name, price, category, photo in tests/photos).
SHOP_CATALOG = [
    ("HAM-1", "Claw hammer", "14.90", "Tools", "hammer1.webp"),
    ("SCI-1", "Paper scissors", "6.50", "Tools", "scissors1.webp"),
    ("PLI-1", "Combination pliers", "11.00", "Tools", "plier1.webp"),
    ("CUP-1", "Coffee cup", "7.95", "Kitchen", "cup.webp"),
    ("PAN-1", "Frying pan", "24.00", "Kitchen", "pan.webp"),
    ("CHA-1", "Wooden chair", "59.00", "Furniture", "chair.webp"),
    ("APL-1", "Red apple", "0.60", "Fruit", "apple.jpg"),
]


@pytest.fixture
def shop_catalog(photo_path):
    """SHOP_CATALOG stored through catalog.services with a published index: {sku: Product}.
    Needs a database (mark the test django_db, transactional or not). Loads the real model."""
    from catalog import services as catalog_services
    from search import services as search_services

    products = {}
    for sku, name, price, category_name, photo in SHOP_CATALOG:
        category = catalog_services.category_get_or_create(name=category_name)
        product = catalog_services.product_create(
            sku=sku, name=name, price=price, currency="EUR", category=category
        )
        catalog_services.product_image_create(
            product=product, file=photo_path(photo).read_bytes(), original_name=photo
        )
        products[sku] = product
    # The build embeds any photo still pending, then publishes the index the page searches.
    build = search_services.index_build_request()
    search_services.index_build_run(build_id=build.pk)
    build.refresh_from_db()
    assert build.status == "succeeded", build.error
    return products
