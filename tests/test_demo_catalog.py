"""The demo catalog as committed (catalog/demo/, rebuilt by catalog/demo/build_demo.py from the real
photo sets): what a newcomer sees in the shop after `make demo`."""

import re
from decimal import Decimal

from PIL import Image

from tests.test_demo import DEMO_DIR, attribution_rows, demo_rows

ALLOWED_LICENCES = re.compile(
    r"^(Public Domain|CC0-1\.0|CC-BY(-SA)?-[\d.]+|MIT|Apache-2\.0 / BSD-3-Clause|GPL-2\.0-or-later)$"
)
MIN_PHOTO_SIDE = 300  # px, the longer side: what a product card and page show without blur


def test_every_demo_product_has_a_real_photo_with_a_redistributable_licence():
    rows = demo_rows()
    attribution = attribution_rows()

    assert len(rows) >= 150
    for row in rows:
        path = DEMO_DIR / "images" / row["image"]
        with Image.open(path) as image:
            image.verify()
        sku, author, source, licence = attribution[row["image"]]
        assert sku == row["sku"]
        assert author and source
        assert ALLOWED_LICENCES.match(licence), f"{row['image']}: licence {licence!r}"
    assert sorted(attribution) == sorted(p.name for p in (DEMO_DIR / "images").iterdir())


def test_demo_catalog_is_small_enough_to_commit():
    total = sum(p.stat().st_size for p in (DEMO_DIR / "images").iterdir())

    assert total < 25 * 1024 * 1024
    for path in (DEMO_DIR / "images").iterdir():
        with Image.open(path) as image:
            assert max(image.size) <= 800, path.name


def test_demo_products_have_unique_skus_categories_and_prices_worth_filtering():
    rows = demo_rows()
    prices = [Decimal(row["price"]) for row in rows]

    assert len({row["sku"] for row in rows}) == len(rows)
    assert all(price > 0 for price in prices)
    assert max(prices) / min(prices) > 50  # cheap and dear items, so a price filter matters
    top_level = {row["category"].split(" > ")[0] for row in rows}
    assert {"Tools", "Kitchen", "Home", "Garden", "Grocery", "Music"} <= top_level


def test_every_demo_photo_is_a_sharp_shop_photo_not_a_benchmark_thumbnail():
    """Fashion-MNIST's 28 px grey thumbnails are a benchmark set, not stock (issue 11)."""
    rows = demo_rows()
    attribution = attribution_rows()

    for row in rows:
        with Image.open(DEMO_DIR / "images" / row["image"]) as image:
            assert max(image.size) >= MIN_PHOTO_SIDE, f"{row['image']}: {image.size}"
            assert image.mode == "RGB", f"{row['image']}: {image.mode}"  # colour photos, no grey scans
        _, author, source, _ = attribution[row["image"]]
        assert "fashion" not in f"{row['image']} {author} {source}".lower(), row["image"]


def test_demo_product_names_tell_products_apart():
    rows = demo_rows()
    names = [row["name"] for row in rows]

    assert len(set(names)) == len(names), sorted(n for n in names if names.count(n) > 1)
    for name in names:
        # Numbered look-alikes ("Tape measure, model 3", "Bag, style 5") say nothing to a shopper.
        assert not re.search(r"\b(model|style|variant|item)\s*\d+\b", name, re.IGNORECASE), name
