"""A damaged published index as the shop sees it: searches still answer (previous build, or exact
search over stored vectors), and status, the admin dashboard, search_status and the API say so."""

import io
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from search.index import current_index
from search.index.manifest import manifest_read
from search.index.publish import build_path
from search.services import index_status
from search.services import query as query_module
from tests.search.shop_helpers import build_now, search_photo
from tests.search.test_index_integrity import damage

pytestmark = pytest.mark.django_db
SEARCH = "/api/v1/search/"
STATUS = "/api/v1/index/status/"


@pytest.fixture
def two_builds(shop_catalog):
    """shop_catalog published one build; a second one is published on top: (older, newer) versions."""
    older = current_index(settings.SEARCH_INDEX_DIR).version
    newer = build_now().version
    assert current_index(settings.SEARCH_INDEX_DIR).version == newer
    return older, newer


def damage_published(name: str = "items.annoy") -> str:
    version = current_index(settings.SEARCH_INDEX_DIR).version  # the live reader holds its maps
    damage(build_path(settings.SEARCH_INDEX_DIR, version) / name, "truncate")
    return version


def photo_upload(photo_bytes, name: str):
    file = io.BytesIO(photo_bytes(name))
    file.name = name
    return file


def test_search_answers_from_the_previous_build_and_status_says_so(two_builds, photo_bytes):
    older, newer = two_builds
    damage_published("vectors.npy")

    hits = search_photo(photo_bytes("cup.webp"), k=3)

    assert hits[0].product.sku == "CUP-1" and hits[0].score == pytest.approx(1.0, abs=1e-3)
    status = index_status()
    assert status.current_build.version == older  # what serves, not what is published
    expected = manifest_read(build_path(settings.SEARCH_INDEX_DIR, newer)).files["vectors.npy"]
    assert status.index_problem == (
        f"The published index build {newer} is damaged (vectors.npy is {expected // 2} bytes, "
        f"expected {expected}); serving the previous build {older}."
    )


def test_a_build_damaged_while_the_query_photo_is_embedded_is_retried_on_the_fallback(
    two_builds, photo_bytes, monkeypatch
):
    """serving_index checked the build before the model ran (~100 ms): it breaks in between."""
    older, _ = two_builds
    real_query_embedder = query_module.query_embedder

    def embedder_then_damage(serving):
        damage_published("vectors.npy")
        return real_query_embedder(serving)

    monkeypatch.setattr(query_module, "query_embedder", embedder_then_damage)
    hits = search_photo(photo_bytes("pan.webp"), k=1)

    assert [hit.product.sku for hit in hits] == ["PAN-1"]
    assert current_index(settings.SEARCH_INDEX_DIR).version == older


def test_without_an_intact_build_search_falls_back_to_exact_search(shop_catalog, photo_bytes, client):
    version = damage_published()

    response = client.post(SEARCH, {"image": photo_upload(photo_bytes, "hammer1.webp"), "k": "2"})

    assert response.status_code == 200, response.content
    assert response.json()["results"][0]["product"]["sku"] == "HAM-1"
    status = index_status()
    assert status.current_build is None and status.exact_fallback
    assert status.index_problem.startswith(f"The published index build {version} is damaged (items.annoy is ")
    assert "searches compare stored vectors exactly" in status.index_problem


def test_api_status_reports_the_problem_without_server_paths(two_builds, client, admin_client):
    _, newer = two_builds
    damage_published()

    public = client.get(STATUS).json()
    staff = admin_client.get(STATUS).json()

    assert public["index_problem"].startswith(f"The published index build {newer} is damaged (items.annoy")
    assert public["index_problem"] == staff["index_problem"]
    assert str(settings.SEARCH_INDEX_DIR) not in str(public)


def test_search_status_command_and_admin_dashboard_show_the_problem(two_builds, admin_client):
    older, newer = two_builds
    damage_published()

    out = StringIO()
    call_command("search_status", stdout=out)
    html = admin_client.get(reverse("admin:search_dashboard")).content.decode()

    line = next(row for row in out.getvalue().splitlines() if row.startswith("Index problem:"))
    assert f"build {newer} is damaged (items.annoy" in line and f"serving the previous build {older}" in line
    assert 'id="index-problem"' in html and f"serving the previous build {older}." in html


def test_an_intact_index_reports_no_problem(shop_catalog, client):
    assert index_status().index_problem == ""
    assert client.get(STATUS).json()["index_problem"] == ""
