"""photo_search and similar_products on a small real catalog with the real offline model."""

import pytest

from catalog.services import product_delete, product_set_active
from search.index import current_index
from search.models import IndexBuild
from search.services import PhotoSource, image_embed, photo_search, ranking, similar_products
from search.uploads import QueryImageError
from tests.search.shop_helpers import add_product, build_now, recompressed, search_photo, side_by_side

pytestmark = pytest.mark.django_db


def skus(hits):
    return [hit.product.sku for hit in hits]


def test_indexed_photo_finds_its_own_product_first(shop, photo_bytes, settings):
    build = build_now()
    assert build.status == IndexBuild.Status.SUCCEEDED and build.vectors == 6

    hits = search_photo(photo_bytes("cup.webp"), k=3)

    assert hits[0].product.sku == "cup"
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert all(0.0 <= hit.score <= 1.0 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_resized_and_recompressed_copy_finds_the_product_first(shop, photo_bytes):
    build_now()
    for name, sku in [("hammer1.webp", "hammer"), ("pan.webp", "pan"), ("chair.webp", "chair")]:
        hits = search_photo(recompressed(photo_bytes(name)), k=3)
        assert hits[0].product.sku == sku
        assert hits[0].score > 0.8


def test_one_hit_per_product_with_its_best_photo(shop, photo_bytes):
    products, _ = shop
    second = add_product("hammer-two", photo_bytes("hammer2.webp"), photo_bytes("hammer1.webp"))
    build_now()

    hits = search_photo(photo_bytes("hammer2.webp"), k=10)

    assert skus(hits).count("hammer-two") == 1
    assert len(set(skus(hits))) == len(hits)
    top = hits[0]
    assert top.product == second and top.image.sha256 == second.images.order_by("id")[0].sha256


def test_deactivated_or_deleted_products_vanish_without_a_rebuild(shop, photo_bytes, settings):
    products, _ = shop
    build_now()
    version = current_index(settings.SEARCH_INDEX_DIR).version

    product_set_active(products=[products["cup"]], active=False)
    product_delete(product=products["pan"])

    assert "cup" not in skus(search_photo(photo_bytes("cup.webp"), k=6))
    assert "pan" not in skus(search_photo(photo_bytes("pan.webp"), k=6))
    assert IndexBuild.objects.count() == 1
    assert current_index(settings.SEARCH_INDEX_DIR).version == version


def test_reactivated_product_is_found_again_before_a_rebuild(shop, photo_bytes):
    products, _ = shop
    product_set_active(products=[products["cup"]], active=False)
    build_now()  # built while the cup was hidden: its vector is not in the index

    product_set_active(products=[products["cup"]], active=True)

    assert search_photo(photo_bytes("cup.webp"), k=3)[0].product.sku == "cup"


def test_product_added_after_the_build_is_found_before_the_next_build(shop, photo_bytes, settings):
    build_now()
    version = current_index(settings.SEARCH_INDEX_DIR).version

    apple = add_product("apple", photo_bytes("apple.jpg"))
    image_embed(image_id=apple.images.get().pk, schedule_build=False)
    hits = search_photo(photo_bytes("apple.jpg"), k=3)

    assert hits[0].product == apple and hits[0].score == pytest.approx(1.0, abs=1e-3)
    assert current_index(settings.SEARCH_INDEX_DIR).version == version
    assert IndexBuild.objects.count() == 1


def test_search_without_any_build_is_exact_over_embeddings(shop, photo_bytes):
    products, _ = shop
    for product in products.values():
        image_embed(image_id=product.images.get().pk, schedule_build=False)

    assert search_photo(photo_bytes("scissors1.webp"), k=2)[0].product.sku == "scissors"


def test_category_filter_includes_child_categories(shop, photo_bytes):
    _, categories = shop
    build_now()

    in_tools = skus(search_photo(photo_bytes("hammer1.webp"), k=10, category=categories["tools"]))
    in_kitchen = skus(search_photo(photo_bytes("hammer1.webp"), k=10, category=categories["kitchen"].pk))

    assert in_tools[0] == "hammer"  # hammer sits in "Hand tools", a child of "Tools"
    assert sorted(in_tools) == ["hammer", "plier", "scissors"]
    assert sorted(in_kitchen) == ["cup", "pan"]


def test_price_range_filter(shop, photo_bytes):
    build_now()

    hits = search_photo(photo_bytes("hammer1.webp"), k=10, min_price="8", max_price=25)

    assert sorted(skus(hits)) == ["hammer", "plier", "scissors"]
    assert all(8 <= hit.product.price <= 25 for hit in hits)


def test_filters_still_fill_k_results_when_most_candidates_are_dropped(shop, photo_bytes, monkeypatch):
    build_now()
    # A tiny first candidate pool forces the service to look further down the ranking.
    monkeypatch.setattr(ranking, "MIN_CANDIDATES", 1)
    monkeypatch.setattr(ranking, "GROWTH", 2)

    hits = search_photo(photo_bytes("chair.webp"), k=2, max_price="8")

    assert sorted(skus(hits)) == ["cup", "scissors"]


def test_crop_searches_only_the_selected_part(shop, photo_bytes):
    build_now()
    both = side_by_side(photo_bytes("hammer1.webp"), photo_bytes("cup.webp"))
    split = both.width and (both.width // 2) / both.width

    left = search_photo(both, k=1, crop=(0, 0, split, 1))
    right = search_photo(both, k=1, crop=(split, 0, 1 - split, 1))

    assert skus(left) == ["hammer"] and skus(right) == ["cup"]


def test_bad_crop_is_a_value_error_for_the_user(shop, photo_bytes):
    with pytest.raises(ValueError, match="crop"):
        search_photo(photo_bytes("cup.webp"), crop=(0.5, 0.5, 0.9, 0.9))


def test_undecodable_query_photo_is_a_value_error_with_a_code(shop):
    with pytest.raises(QueryImageError, match="not a picture") as info:
        search_photo(b"this is not a photo")
    assert info.value.code == "not_an_image"


def test_result_names_the_model_and_times_each_stage(shop, photo_bytes):
    build_now()

    result = photo_search(PhotoSource(data=photo_bytes("cup.webp")), k=3)

    assert result.model.name == "efficientnet_lite0" and result.model.fingerprint
    assert set(result.timings) == {"read", "validate", "objects", "model", "index", "db", "total"}
    # The model's forward pass dominates; every stage is inside the total.
    assert 0 < result.timings["model"] < result.timings["total"]
    parts = sum(ms for name, ms in result.timings.items() if name != "total")
    assert parts <= result.timings["total"] + 1.0


def test_similar_products_never_include_the_product_itself(shop, photo_bytes):
    products, _ = shop
    twin = add_product("hammer-twin", photo_bytes("hammer2.webp"))
    build_now()

    hits = similar_products(products["hammer"], k=3).hits

    assert products["hammer"] not in [hit.product for hit in hits]
    assert len(hits) == 3
    assert twin in [hit.product for hit in hits]


def test_similar_products_of_a_product_without_embedding_is_empty(shop, photo_bytes):
    lonely = add_product("lonely")
    assert similar_products(lonely, k=4).hits == []
