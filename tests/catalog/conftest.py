"""Catalog test helpers: a product to hang photos on, and photos as Django files."""

from decimal import Decimal

import pytest
from django.core.files.base import ContentFile

from catalog.services import category_get_or_create, product_create


@pytest.fixture
def product(db):
    return product_create(
        sku="HAM-1",
        name="Claw hammer",
        price=Decimal("12.50"),
        currency="EUR",
        category=category_get_or_create(name="Tools"),
    )


@pytest.fixture
def make_product(db):
    def _make(sku: str, name: str | None = None, price: str = "1.00", category=None, **extra):
        return product_create(
            sku=sku, name=name or sku, price=price, currency="EUR", category=category, **extra
        )

    return _make


@pytest.fixture
def upload(photo_bytes):
    """A Django file of a real photo from tests/photos, as an upload would arrive."""

    def _upload(name: str) -> ContentFile:
        return ContentFile(photo_bytes(name), name=name)

    return _upload
