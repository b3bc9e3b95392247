"""Fixtures of the catalog tests: a product to hang photos on, a product maker, photos as uploads.
Admin page helpers (no fixtures) are in tests/catalog/admin_helpers.py."""

from decimal import Decimal

import pytest
from django.core.files.base import ContentFile

from tests.factories import CategoryFactory, ProductFactory


@pytest.fixture
def product(db):
    return ProductFactory(
        sku="HAM-1", name="Claw hammer", price=Decimal("12.50"), category=CategoryFactory(name="Tools")
    )


@pytest.fixture
def make_product(db):
    def _make(sku: str, name: str | None = None, price: str = "1.00", category=None, **extra):
        return ProductFactory(sku=sku, name=name or sku, price=price, category=category, **extra)

    return _make


@pytest.fixture
def upload(photo_bytes):
    """A Django file of a real photo from tests/photos, as an upload would arrive."""

    def _upload(name: str) -> ContentFile:
        return ContentFile(photo_bytes(name), name=name)

    return _upload
