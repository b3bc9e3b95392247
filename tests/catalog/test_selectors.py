"""Catalog reads: filters, hidden products, sub-categories, and a fixed number of queries."""

from decimal import Decimal

import pytest
from django.core.files.base import ContentFile

from catalog.selectors import category_label, category_list, product_get, product_list
from catalog.services import category_get_or_create, product_image_create, product_set_active


@pytest.fixture
def shop(make_product, photo_bytes):
    tools = category_get_or_create(name="Tools")
    hammers = category_get_or_create(name="Hammers", parent=tools)
    kitchen = category_get_or_create(name="Kitchen")
    items = {
        "HAM": make_product("HAM", "Claw hammer", "12.50", hammers, description="steel head"),
        "PLI": make_product("PLI", "Pliers", "8.00", tools),
        "CUP": make_product("CUP", "Cup", "3.00", kitchen),
        "PAN": make_product("PAN", "Pan", "25.00", kitchen),
    }
    for sku, photos in {
        "HAM": ["hammer1.webp", "hammer2.webp"],
        "PLI": ["plier1.webp"],
        "CUP": ["cup.webp"],
    }.items():
        for name in photos:
            product_image_create(product=items[sku], file=ContentFile(photo_bytes(name), name=name))
    product_set_active(products=[items["PAN"]], active=False)
    return {"tools": tools, "hammers": hammers, "kitchen": kitchen, **items}


def _skus(queryset) -> list[str]:
    return [product.sku for product in queryset]


@pytest.mark.django_db
def test_product_list_filters(shop):
    assert _skus(product_list()) == ["HAM", "CUP", "PLI"]  # by name; the hidden pan is not listed
    assert _skus(product_list(category=shop["tools"])) == ["HAM", "PLI"]  # includes sub-categories
    assert _skus(product_list(category=shop["hammers"].pk)) == ["HAM"]
    assert _skus(product_list(min_price=Decimal("5"), max_price=Decimal("10"))) == ["PLI"]
    assert _skus(product_list(search="STEEL")) == ["HAM"]
    assert _skus(product_list(active=None, category=shop["kitchen"])) == ["CUP", "PAN"]
    assert _skus(product_list(active=False)) == ["PAN"]


@pytest.mark.django_db
def test_product_list_costs_the_same_queries_for_any_number_of_products(shop, django_assert_num_queries):
    with django_assert_num_queries(3):  # categories for the filter, products, their photos
        rows = [
            (
                p.category.parent and p.category.parent.name,
                [i.original_name for i in p.images.all()],
                p.primary_image,
            )
            for p in product_list(category=shop["tools"])
        ]
    assert rows[0][1] == ["hammer1.webp", "hammer2.webp"]
    assert rows[0][2].original_name == "hammer1.webp"


@pytest.mark.django_db
def test_product_get_by_id_or_sku_hides_inactive(shop):
    assert product_get(sku="HAM").name == "Claw hammer"
    assert product_get(pk=shop["CUP"].pk).sku == "CUP"
    assert product_get(sku="PAN") is None
    assert product_get(sku="PAN", active=None).sku == "PAN"
    assert product_get(sku="NOPE") is None
    with pytest.raises(ValueError, match="exactly one"):
        product_get()


@pytest.mark.django_db
def test_category_list_counts_active_products_and_labels_paths(shop):
    counts = {category.name: category.product_count for category in category_list()}

    assert counts == {"Hammers": 1, "Kitchen": 1, "Tools": 1}
    assert category_label(shop["hammers"]) == "Tools > Hammers"
