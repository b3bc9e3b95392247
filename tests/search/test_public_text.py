"""Server paths never reach shoppers or anonymous API clients; staff still see them.

Driven by a real model-load failure (an explicit SEARCH_WEIGHTS_PATH that does not exist), not by a
patched view: whatever wording the loader uses, the path must not come out.
"""

import io

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from search.public_text import shown_to, without_server_paths

pytestmark = pytest.mark.django_db

SECRET_DIR = "/srv/secret-models"


@pytest.fixture
def broken_weights(settings, fresh_embedder):
    settings.SEARCH_WEIGHTS_PATH = f"{SECRET_DIR}/resnet50-custom.pth"


def test_search_and_similar_503_do_not_name_the_weights_file(broken_weights, shop, photo_bytes):
    products, _ = shop
    client = APIClient()
    search = client.post("/api/v1/search/", {"image": _upload(photo_bytes("cup.webp"))}, format="multipart")
    similar = client.get(f"/api/v1/products/{products['cup'].pk}/similar/")
    for response in (search, similar):
        assert response.status_code == 503, response.content
        assert response.json()["code"] == "search_unavailable"
        assert SECRET_DIR not in response.content.decode()
        assert "<path>" in response.json()["detail"]


def test_staff_see_the_path_in_api_errors(broken_weights, shop, photo_bytes):
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("ops", password="x", is_staff=True))
    response = client.post("/api/v1/search/", {"image": _upload(photo_bytes("cup.webp"))}, format="multipart")
    assert response.status_code == 503
    assert SECRET_DIR in response.json()["detail"]


def test_shopper_pages_do_not_name_the_weights_file(broken_weights, shop, client, photo_bytes):
    products, _ = shop
    home = client.get("/")
    product = client.get(f"/products/{products['cup'].pk}/")
    searched = client.post("/", {"image": _upload(photo_bytes("cup.webp"))})
    assert searched.status_code == 503
    for response in (home, product, searched):
        body = response.content.decode()
        assert "unavailable" in body
        assert SECRET_DIR not in body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SEARCH_WEIGHTS_PATH=/opt/m/r.pth does not exist", "SEARCH_WEIGHTS_PATH=<path> does not exist"),
        ("cannot read '/var/lib/shop/index/builds/v1/items.annoy'", "cannot read '<path>'"),
        ("see ~/weights/r.pth", "see <path>"),
        ("see https://example.com/help/io and image/jpeg", "see https://example.com/help/io and image/jpeg"),
    ],
)
def test_without_server_paths(text, expected):
    assert without_server_paths(text) == expected
    assert without_server_paths({"a": [text]}) == {"a": [expected]}


def test_shown_to_staff_only():
    staff = get_user_model()(username="s", is_staff=True)
    shopper = get_user_model()(username="p")
    assert shown_to(staff, "at /opt/x") == "at /opt/x"
    assert shown_to(shopper, "at /opt/x") == "at <path>"
    assert shown_to(None, "at /opt/x") == "at <path>"


def _upload(data: bytes):
    file = io.BytesIO(data)
    file.name = "q.webp"
    return file
