"""Products, categories, similar products and index status over /api/v1/, and token-only catalog
writes that go through the same catalog services as the admin."""

import dataclasses
import io

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from catalog.models import Product, ProductImage
from search.models import ImageEmbedding
from tests.factories import UserFactory
from tests.search.shop_helpers import build_now
from tests.search.test_api_permissions import CATALOG_PERMISSIONS

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
CATALOG_WRITE = [f"catalog.{codename}" for codename in CATALOG_PERMISSIONS]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def token_api():
    user = UserFactory(username="integration", permissions=CATALOG_WRITE, token=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


def upload(name: str, data: bytes):
    file = io.BytesIO(data)
    file.name = name
    return file


def skus(body) -> set[str]:
    return {item["sku"] for item in body["results"]}


def test_product_list_is_paginated_and_public(api, shop, settings):
    assert api.get(PRODUCTS).json()["count"] == 6
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "PAGE_SIZE": 4}
    first = api.get(PRODUCTS).json()
    assert first["count"] == 6 and len(first["results"]) == 4
    assert first["next"].startswith("http://testserver/api/v1/products/?page=2")
    second = api.get(first["next"]).json()
    assert len(second["results"]) == 2 and second["next"] is None
    item = first["results"][0]
    assert set(item) == {
        "id",
        "sku",
        "name",
        "price",
        "currency",
        "category",
        "url",
        "thumbnail_url",
        "thumbnails",
    }
    assert api.get(f"{PRODUCTS}?page=9").json()["code"] == "not_found"
    assert len(api.get(f"{PRODUCTS}?page_size=5").json()["results"]) == 5


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=kitchen", {"cup", "pan"}),
        ("category=tools", {"hammer", "scissors", "plier"}),  # subcategories included
        ("min_price=10&max_price=30", {"hammer", "plier", "pan"}),
        ("q=ham", {"hammer"}),
        ("category=hand-tools&max_price=10", {"scissors"}),
    ],
)
def test_product_list_filters(api, shop, query, expected):
    assert skus(api.get(f"{PRODUCTS}?{query}").json()) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [("category=nope", "category"), ("min_price=abc", "min_price"), ("min_price=9&max_price=1", "max_price")],
)
def test_product_list_bad_filters(api, shop, query, field):
    response = api.get(f"{PRODUCTS}?{query}")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_hidden_products_are_not_listed_or_shown(api, shop):
    products, _ = shop
    Product.objects.filter(pk=products["cup"].pk).update(is_active=False)
    assert "cup" not in skus(api.get(PRODUCTS).json())
    assert api.get(f"{PRODUCTS}{products['cup'].pk}/").status_code == 404


def test_product_detail(api, shop):
    products, _ = shop
    body = api.get(f"{PRODUCTS}{products['hammer'].pk}/").json()
    assert body["sku"] == "hammer" and body["price"] == "25.00"
    assert body["category"] == {"slug": "hand-tools", "name": "Hand tools"}
    assert len(body["images"]) == 1
    image = body["images"][0]
    assert image["url"].startswith("http://testserver/media/products/")
    assert image["width"] > 0 and image["height"] > 0


def test_similar_products(api, shop, photo_bytes):
    from tests.search.shop_helpers import add_product

    products, _ = shop
    add_product("hammer-two", photo_bytes("hammer2.webp"))
    build_now()
    response = api.get(f"{PRODUCTS}{products['hammer'].pk}/similar/?k=3")
    assert response.status_code == 200, response.content
    body = response.json()
    found = [hit["product"]["sku"] for hit in body["results"]]
    assert len(found) == 3 and "hammer" not in found
    assert found[0] == "hammer-two"
    assert body["product"]["sku"] == "hammer" and body["model"]["fallback"] is True


@pytest.mark.parametrize("k", ["0", "101", "abc"])
def test_similar_products_k_is_validated(api, shop, k):
    products, _ = shop
    response = api.get(f"{PRODUCTS}{products['cup'].pk}/similar/?k={k}")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["k"]


def test_categories(api, shop):
    body = api.get("/api/v1/categories/").json()
    by_slug = {item["slug"]: item for item in body}
    assert set(by_slug) == {"tools", "hand-tools", "kitchen", "home"}
    assert by_slug["hand-tools"]["parent"] == "tools" and by_slug["tools"]["parent"] is None
    assert by_slug["kitchen"]["product_count"] == 2


def test_index_status(api, shop):
    before = api.get("/api/v1/index/status/").json()
    assert before["state"] == "empty" and before["current_build"] is None
    assert before["products"] == 6 and before["pending"] == 6
    build_now()
    after = api.get("/api/v1/index/status/").json()
    assert after["state"] == "ready"
    assert after["embedded"] == 6 and after["current_build"]["vectors"] == 6
    assert after["name"] == "efficientnet_lite0" and after["fallback"] is True


def test_index_status_shows_server_paths_to_staff_only(api, shop, monkeypatch):
    import search.api.views as views
    from search.embedder import current_embedder

    products, _ = shop
    image = products["cup"].images.get()
    reason = "cannot read /srv/shop/media/products/ab/cup.jpg (see https://example.com/help/io)"
    ImageEmbedding.objects.create(
        image=image,
        fingerprint=current_embedder().fingerprint,
        content_sha256=image.sha256,
        status="failed",
        error=reason,
    )
    real_status = views.index_status

    def status_with_a_weights_file():
        return dataclasses.replace(real_status(), weights_source="file /opt/models/resnet50-custom.pth")

    monkeypatch.setattr(views, "index_status", status_with_a_weights_file)
    public = api.get("/api/v1/index/status/").json()
    api.force_authenticate(get_user_model().objects.create_user("ops", password="x", is_staff=True))
    internal = api.get("/api/v1/index/status/").json()

    assert public["weights_source"] == "file <path>"
    assert public["recent_failures"][0]["reason"] == "cannot read <path> (see https://example.com/help/io)"
    assert internal["weights_source"] == "file /opt/models/resnet50-custom.pth"
    assert internal["recent_failures"][0]["reason"] == reason


# --- writes ---------------------------------------------------------------------------------
NEW_PRODUCT = {"sku": "mug-1", "name": "Blue mug", "price": "7.50", "category": "kitchen"}


def test_writes_need_a_token(api, shop, photo_bytes):
    products, _ = shop
    pk = products["cup"].pk
    image_id = products["cup"].images.get().pk
    attempts = [
        api.post(PRODUCTS, NEW_PRODUCT, format="json"),
        api.patch(f"{PRODUCTS}{pk}/", {"price": "1.00"}, format="json"),
        api.delete(f"{PRODUCTS}{pk}/"),
        api.post(f"{PRODUCTS}{pk}/images/", {"image": upload("c.webp", photo_bytes("cup.webp"))}),
        api.delete(f"{PRODUCTS}{pk}/images/{image_id}/"),
    ]
    for response in attempts:
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
        assert response.json()["code"] == "not_authenticated"
    assert Product.objects.count() == 6 and Product.objects.get(pk=pk).price == 5


def test_wrong_token_is_refused(api, shop):
    api.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = api.post(PRODUCTS, NEW_PRODUCT, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_create_update_delete_product_with_token(token_api, shop):
    created = token_api.post(PRODUCTS, NEW_PRODUCT, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["sku"] == "mug-1" and body["currency"] == "EUR" and body["category"]["slug"] == "kitchen"

    pk = body["id"]
    updated = token_api.patch(f"{PRODUCTS}{pk}/", {"price": "9.99", "name": "Big blue mug"}, format="json")
    assert updated.status_code == 200
    assert updated.json()["price"] == "9.99" and updated.json()["name"] == "Big blue mug"

    assert token_api.delete(f"{PRODUCTS}{pk}/").status_code == 204
    assert not Product.objects.filter(pk=pk).exists()


def test_create_product_validation(token_api, shop):
    duplicate = token_api.post(PRODUCTS, {**NEW_PRODUCT, "sku": "cup"}, format="json")
    assert duplicate.status_code == 400
    assert duplicate.json()["code"] == "sku_taken" and "already exists" in duplicate.json()["detail"]

    bad = token_api.post(PRODUCTS, {"sku": "x", "price": "-3", "category": "nope"}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"name", "price", "category"}

    # Checked by the catalog service itself (the admin's rule): a clear message and its code.
    currency = token_api.post(PRODUCTS, {**NEW_PRODUCT, "currency": "E1X"}, format="json")
    assert currency.status_code == 400
    assert currency.json() == {
        "detail": "The currency 'E1X' is not a three-letter ISO 4217 code like EUR.",
        "code": "currency_invalid",
    }


def test_upload_and_delete_image_with_token(token_api, shop, photo_bytes, django_capture_on_commit_callbacks):
    products, _ = shop
    pk = products["cup"].pk
    with django_capture_on_commit_callbacks(execute=True):
        photo = {"image": upload("m.jpg", photo_bytes("apple.jpg"))}
        response = token_api.post(f"{PRODUCTS}{pk}/images/", photo)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] is True and isinstance(body["warnings"], list)
    image_id = body["image"]["id"]
    # The same service as the admin: the new photo was embedded once the upload committed.
    assert ImageEmbedding.objects.filter(image_id=image_id, status="done").exists()

    again = token_api.post(f"{PRODUCTS}{pk}/images/", {"image": upload("m.jpg", photo_bytes("apple.jpg"))})
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["image"]["id"] == image_id

    other = products["chair"].pk
    assert token_api.delete(f"{PRODUCTS}{other}/images/{image_id}/").status_code == 404
    assert token_api.delete(f"{PRODUCTS}{pk}/images/{image_id}/").status_code == 204
    assert not ProductImage.objects.filter(pk=image_id).exists()


def test_duplicate_photo_of_another_product_warns(token_api, shop, photo_bytes):
    products, _ = shop
    response = token_api.post(
        f"{PRODUCTS}{products['pan'].pk}/images/", {"image": upload("c.webp", photo_bytes("cup.webp"))}
    )
    assert response.status_code == 201
    assert any("cup" in warning.lower() for warning in response.json()["warnings"])


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("empty.jpg", lambda photos: b""),
        ("truncated.jpg", lambda photos: photos("apple.jpg")[:4000]),
        ("notes.jpg", lambda photos: b"plain text, not a photo"),
    ],
)
def test_bad_product_photo_is_refused_with_reason(token_api, shop, photo_bytes, name, make):
    products, _ = shop
    photo = {"image": upload(name, make(photo_bytes))}
    response = token_api.post(f"{PRODUCTS}{products['pan'].pk}/images/", photo)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] and body["code"] != "server_error"
    assert products["pan"].images.count() == 1


def test_product_photo_over_the_pixel_limit_is_413(token_api, shop, settings, image_bytes):
    settings.CATALOG_IMAGE_MAX_PIXELS = 10_000
    products, _ = shop
    photo = {"image": upload("wide.png", image_bytes((200, 100), fmt="PNG"))}
    response = token_api.post(f"{PRODUCTS}{products['pan'].pk}/images/", photo)
    assert response.status_code == 413
    assert response.json()["code"] == "image_too_large" and "limit" in response.json()["detail"]


def test_oversized_product_photo_is_413(token_api, shop, settings, photo_bytes):
    settings.CATALOG_IMAGE_MAX_BYTES = 50_000
    products, _ = shop
    big = photo_bytes("apple.jpg") + b"\0" * 200_000
    response = token_api.post(f"{PRODUCTS}{products['pan'].pk}/images/", {"image": upload("big.jpg", big)})
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_busy_database_on_photo_upload_is_503_and_leaves_no_file(
    token_api, shop, photo_bytes, settings, monkeypatch
):
    from pathlib import Path

    from django.db import OperationalError

    products, _ = shop
    before = {path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()}

    def locked(self, *args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(ProductImage, "save", locked)
    response = token_api.post(
        f"{PRODUCTS}{products['cup'].pk}/images/", {"image": upload("a.jpg", photo_bytes("apple.jpg"))}
    )
    assert response.status_code == 503
    assert response.json()["code"] == "database_busy" and response["Retry-After"] == "5"
    assert {path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()} == before


@pytest.mark.parametrize(
    "tail",
    [b"<html><body><script>fetch('/admin/')</script></body></html>", b"PK-archive"],
    ids=["html", "zip"],
)
def test_polyglot_product_photo_is_refused(token_api, shop, photo_bytes, tail):
    import zipfile

    if tail == b"PK-archive":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            archive.writestr("payload.txt", "hidden")
        tail = buf.getvalue()
    products, _ = shop
    before = ProductImage.objects.count()
    data = photo_bytes("apple.jpg") + tail
    response = token_api.post(f"{PRODUCTS}{products['cup'].pk}/images/", {"image": upload("a.jpg", data)})
    assert response.status_code == 400
    assert response.json()["code"] == "image_polyglot" and "besides a picture" in response.json()["detail"]
    assert ProductImage.objects.count() == before
