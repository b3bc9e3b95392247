"""The one search by photo: the API, the shopper page and the admin all run search.services.photo_search,
its SQL does not grow with k, and it says which model answered."""

import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from search.services import query as query_module
from tests.search.shop_helpers import build_now

pytestmark = pytest.mark.django_db


def _upload(data: bytes, name: str = "q.webp"):
    file = io.BytesIO(data)
    file.name = name
    return file


@pytest.fixture
def service_calls(monkeypatch):
    """Counts the searches that went through the service (its photo decoding step)."""
    calls = []
    real = query_module.decode_query_image

    def spy(data, **kwargs):
        calls.append(len(data))
        return real(data, **kwargs)

    monkeypatch.setattr(query_module, "decode_query_image", spy)
    return calls


def test_api_page_and_admin_run_the_same_service(shop, photo_bytes, admin_client, service_calls):
    products, _ = shop
    build_now()
    cup = photo_bytes("cup.webp")

    api = APIClient().post("/api/v1/search/", {"image": _upload(cup)}, format="multipart")
    assert api.status_code == 200 and len(service_calls) == 1
    page = admin_client.post("/", {"image": _upload(cup)})
    assert page.status_code == 200 and len(service_calls) == 2
    admin = admin_client.get(reverse("admin:catalog_product_photo_search", args=[products["cup"].pk]))
    assert admin.status_code == 200 and len(service_calls) == 3
    # All three found the cup first.
    assert api.json()["results"][0]["product"]["sku"] == "cup"
    assert page.content.decode().index("Cup") < page.content.decode().index("Pan")


@pytest.mark.parametrize("path", ["/api/v1/search/", "/"])
def test_sql_queries_per_search_do_not_grow_with_k(shop, photo_bytes, path, client, monkeypatch):
    build_now()
    cup = photo_bytes("cup.webp")
    # The process's first search loads the vector store's delta once (search.services.stores).
    assert client.post(path, {"image": _upload(cup), "k": 1}).status_code == 200
    counts = {}
    for k in (1, 6):
        monkeypatch.setattr("search.views.PAGE_RESULTS", k)  # the page's k; the API's is a parameter
        with CaptureQueriesContext(connection) as queries:
            response = client.post(path, {"image": _upload(cup), "k": k})
        assert response.status_code == 200
        if path.startswith("/api"):
            assert len(response.json()["results"]) == k
        else:
            # One score per card; the blank card of #card-template (the script's) has no match level.
            assert len(re.findall(r'class="card__score card__score--\w+"', response.content.decode())) == k
        counts[k] = len(queries)
    assert counts[1] == counts[6], counts


def test_the_answer_names_the_model_that_embedded_the_query(shop, photo_bytes, monkeypatch):
    build_now()
    from search.services import PhotoSource, photo_search

    result = photo_search(PhotoSource(data=photo_bytes("cup.webp")), k=2)
    # The model in the result is the very object whose embed_one ran, not a second lookup.
    seen = []
    real = type(result.model).embed

    def spy(self, pictures):
        seen.append(self)
        return real(self, pictures)

    monkeypatch.setattr(type(result.model), "embed", spy)
    again = photo_search(PhotoSource(data=photo_bytes("cup.webp")), k=2)
    assert seen == [again.model]
