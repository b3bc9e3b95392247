"""Products and categories: service validation and the database constraints behind it."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import DataError, IntegrityError, transaction

from catalog.models import Category, Product, ProductImage
from catalog.services import (
    category_get_or_create,
    product_create,
    product_delete,
    product_set_active,
    product_update,
)


def _raw_product(**fields) -> Product:
    values = {"sku": "RAW", "name": "Raw", "price": Decimal("1.00"), "currency": "EUR", **fields}
    return Product.objects.create(**values)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [{"price": Decimal("-0.01")}, {"currency": "eur"}, {"currency": "EURO"}, {"sku": ""}],
    ids=["negative-price", "lowercase-currency", "long-currency", "empty-sku"],
)
def test_database_refuses_invalid_products(fields):
    # PostgreSQL refuses a 4-letter currency by column length (DataError), SQLite by the check constraint.
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        _raw_product(**fields)


@pytest.mark.django_db
def test_database_refuses_duplicate_sku():
    _raw_product()
    with pytest.raises(IntegrityError), transaction.atomic():
        _raw_product(name="Other")


@pytest.mark.django_db
def test_database_refuses_the_same_photo_twice_for_one_product(product):
    def add():
        ProductImage.objects.create(product=product, image="x.jpg", sha256="a" * 64, width=1, height=1)

    add()
    with pytest.raises(IntegrityError), transaction.atomic():
        add()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"price": "-1"}, "must not be negative"),
        ({"price": "12.345"}, "more than two decimals"),
        ({"price": "ten"}, "'ten' is not a number"),
        ({"currency": "EURO"}, "ISO 4217"),
        ({"sku": "  "}, "SKU is missing"),
        ({"name": ""}, "name is missing"),
    ],
)
def test_product_create_explains_bad_input(fields, message):
    values = {"sku": "S1", "name": "Cup", "price": "1.00", "currency": "EUR", "category": None, **fields}

    with pytest.raises(ValidationError, match=message):
        product_create(**values)
    assert not Product.objects.exists()


@pytest.mark.django_db
def test_product_create_normalises_and_refuses_taken_sku(make_product):
    product = product_create(
        sku=" A-1 ", name="  Claw   hammer ", price="12,5", currency="usd", category=None
    )

    assert (product.sku, product.name, product.price, product.currency) == (
        "A-1",
        "Claw hammer",
        Decimal("12.50"),
        "USD",
    )
    assert product.slug == "claw-hammer"
    with pytest.raises(ValidationError, match="already exists"):
        make_product("A-1")


@pytest.mark.django_db
def test_product_update_changes_only_given_fields(product, make_product):
    product_update(product=product, price="15", name="Big hammer")
    product.refresh_from_db()
    assert (product.price, product.name, product.slug) == (Decimal("15.00"), "Big hammer", "big-hammer")

    make_product("TAKEN")
    with pytest.raises(ValidationError, match="already exists"):
        product_update(product=product, sku="TAKEN")
    with pytest.raises(ValidationError, match="Cannot update created_at"):
        product_update(product=product, created_at=None)


@pytest.mark.django_db
def test_product_set_active_hides_and_shows(make_product):
    a, b = make_product("A"), make_product("B")

    assert product_set_active(products=[a, b], active=False) == 2
    assert product_set_active(products=[a], active=False) == 0
    assert not Product.objects.filter(is_active=True).exists()


@pytest.mark.django_db
def test_product_delete_removes_its_photos(product, photo_bytes):
    from catalog.services import product_image_create

    product_image_create(product=product, file=ContentFile(photo_bytes("cup.webp"), name="cup.webp"))

    product_delete(product=product)

    assert not ProductImage.objects.exists()


@pytest.mark.django_db
def test_categories_are_reused_case_insensitively_and_slugs_stay_unique():
    tools = category_get_or_create(name="Hand Tools")
    assert category_get_or_create(name="hand  tools") == tools

    hammers = category_get_or_create(name="Hammers", parent=tools)
    other_hammers = category_get_or_create(name="Hammers")
    clash = Category.objects.create(name="x", slug="hand-tools-2")

    assert hammers.parent == tools and hammers.slug == "hand-tools-hammers"
    assert other_hammers != hammers and other_hammers.slug == "hammers"
    assert category_get_or_create(name="Hand-Tools").slug == "hand-tools-3"  # "-2" is taken by clash
    assert clash.slug == "hand-tools-2"
    with pytest.raises(ValidationError, match="needs a name"):
        category_get_or_create(name="  ")
    with pytest.raises(ValidationError, match="longer than 120 characters"):
        category_get_or_create(name="x" * 121)
