"""No renderer answers 500: every API endpoint, for any Accept header and ?format=, as anyone.

The endpoints are read from the URL conf, so a new endpoint is covered without editing this test.
"""

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, get_resolver
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def api_routes() -> list[str]:
    """Every route under /api/v1/ as a path template ("<int:pk>" style converters kept)."""
    api = next(p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/")
    return [f"/api/v1/{p.pattern}" for p in api.url_patterns if isinstance(p, URLPattern)]


def _concrete(route: str, shop) -> str:
    products, _ = shop
    cup = products["cup"]
    route = route.replace("<int:pk>", str(cup.pk)).replace("<int:image_id>", str(cup.images.get().pk))
    return route.replace("^(?P<path>.*)$", "no-such-endpoint/")


def test_every_api_route_is_walked():
    routes = api_routes()
    assert "/api/v1/products/" in routes and "/api/v1/search/" in routes and len(routes) >= 10


@pytest.mark.parametrize("user", ["anonymous", "superuser"])
@pytest.mark.parametrize(
    "ask",
    [{"HTTP_ACCEPT": "text/html"}, {"format": "api"}, {"format": "json"}, {"format": "xml"}, {}],
    ids=["accept-html", "format-api", "format-json", "format-unknown", "default"],
)
@pytest.mark.parametrize("method", ["get", "options"])
def test_no_endpoint_answers_500_for_any_renderer(shop, user, ask, method):
    client = APIClient()
    if user == "superuser":
        client.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-only"))
    failures = []
    for route in api_routes():
        path = _concrete(route, shop)
        query = {"format": ask["format"]} if "format" in ask else {}
        headers = {k: v for k, v in ask.items() if k != "format"}
        response = getattr(client, method)(path, query, **headers)
        content_type = response.get("Content-Type", "")
        if response.status_code >= 500:
            failures.append(f"{method.upper()} {path} {ask}: {response.status_code}")
        elif not content_type.startswith(("application/json", "text/html", "application/vnd.oai.openapi")):
            failures.append(f"{method.upper()} {path} {ask}: Content-Type {content_type!r}")
    assert not failures, "\n".join(failures)
