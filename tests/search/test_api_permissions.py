"""Who may write the catalog through the API: every write endpoint x every kind of caller.

Reads are public; a write needs the model permission for what it changes, the same as the admin asks
of the same user. A token (or a session) alone is not enough.
"""

import io

import pytest
from rest_framework.test import APIClient

from catalog.models import Product, ProductImage
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PRODUCTS = "/api/v1/products/"
CATALOG_PERMISSIONS = [
    "add_product",
    "change_product",
    "delete_product",
    "add_productimage",
    "change_productimage",
    "delete_productimage",
]


def _photo(data: bytes):
    file = io.BytesIO(data)
    file.name = "new.jpg"
    return file


# (name, method, path template, body or None, the permission it needs, status with that permission)
WRITES = [
    ("create product", "post", "{products}", "product", "add_product", 201),
    ("update product", "patch", "{products}{pk}/", "price", "change_product", 200),
    ("delete product", "delete", "{products}{pk}/", None, "delete_product", 204),
    ("add photo", "post", "{products}{pk}/images/", "photo", "add_productimage", 201),
    ("delete photo", "delete", "{products}{pk}/images/{image_id}/", None, "delete_productimage", 204),
]


def _client(kind: str, permissions: list[str]) -> APIClient:
    client = APIClient()
    if kind == "anonymous":
        return client
    user = UserFactory(
        username=f"u-{kind}",
        staff=kind.startswith("staff"),
        permissions=[f"catalog.{codename}" for codename in permissions],
        token=not kind.endswith("session"),
    )
    if kind.endswith("session"):
        client.force_login(user)
    else:
        client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    return client


def _call(client: APIClient, write: tuple, shop, photo_bytes):
    _name, method, template, body, _perm, _ok = write
    products, _ = shop
    cup = products["cup"]
    path = template.format(products=PRODUCTS, pk=cup.pk, image_id=cup.images.get().pk)
    data = {
        "product": {"sku": "mug-1", "name": "Blue mug", "price": "7.50", "category": "kitchen"},
        "price": {"price": "1.00"},
        "photo": {"image": _photo(photo_bytes("apple.jpg"))},
        None: None,
    }[body]
    fmt = "multipart" if body == "photo" else "json"
    return getattr(client, method)(path, data, format=fmt)


def _catalog_state(shop):
    products, _ = shop
    cup_price = Product.objects.filter(pk=products["cup"].pk).values_list("price", flat=True).first()
    return Product.objects.count(), ProductImage.objects.count(), cup_price


@pytest.mark.parametrize("write", WRITES, ids=[w[0] for w in WRITES])
@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("anonymous", 401, "not_authenticated"),
        ("user-token", 403, "permission_denied"),
        ("staff-token", 403, "permission_denied"),
        ("staff-session", 403, "permission_denied"),
    ],
)
def test_writes_without_the_permission_are_refused_and_change_nothing(
    kind, status, code, write, shop, photo_bytes
):
    before = _catalog_state(shop)
    # A user holding every catalog permission but the one this write needs is refused too.
    others = [perm for perm in CATALOG_PERMISSIONS if perm != write[4]] if kind == "staff-token" else []
    response = _call(_client(kind, others), write, shop, photo_bytes)
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert _catalog_state(shop) == before


@pytest.mark.parametrize("kind", ["user-token", "staff-token", "staff-session"])
@pytest.mark.parametrize("write", WRITES, ids=[w[0] for w in WRITES])
def test_writes_with_the_permission_succeed(kind, write, shop, photo_bytes):
    before = _catalog_state(shop)
    response = _call(_client(kind, [write[4]]), write, shop, photo_bytes)
    assert response.status_code == write[5], response.content
    assert _catalog_state(shop) != before


def test_reads_stay_public(shop):
    client = APIClient()
    products, _ = shop
    assert client.get(PRODUCTS).status_code == 200
    assert client.get(f"{PRODUCTS}{products['cup'].pk}/").status_code == 200
    assert client.get("/api/v1/categories/").status_code == 200
