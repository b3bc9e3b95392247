"""The search index dashboard in the admin: model (and its fallback), counts, builds, Rebuild now."""

import pytest
from django.urls import reverse

from search.models import IndexBuild
from tests.catalog.admin_helpers import failed_embedding

pytestmark = pytest.mark.django_db
DASHBOARD = reverse("admin:search_dashboard")


def test_dashboard_shows_the_model_and_says_loudly_it_is_a_fallback(admin_client):
    html = admin_client.get(DASHBOARD).content.decode()
    # The test settings ask for resnet50, whose weights cannot be had offline: the fallback runs.
    assert '<td id="model-name">efficientnet_lite0</td>' in html
    assert 'id="model-fallback"' in html and "FALLBACK MODEL: resnet50 was requested" in html
    assert 'id="no-build"' in html


def test_dashboard_shows_untrained_mode(admin_client, settings):
    from search.embedder import reset_embedder

    settings.SEARCH_UNTRAINED = True
    settings.SEARCH_BACKBONE = "resnet18"
    reset_embedder()
    try:
        html = admin_client.get(DASHBOARD).content.decode()
    finally:
        reset_embedder()  # the next test loads the model of the test settings again
    assert 'id="model-untrained"' in html and "UNTRAINED MODEL: resnet18" in html


def test_dashboard_shows_counts_failures_and_the_current_build(admin_client, shop_catalog, photo_bytes):
    from catalog.services import product_create, product_image_create

    broken = product_create(sku="BOX-1", name="Box", price="1.00", currency="EUR", category=None)
    product_image_create(product=broken, file=photo_bytes("box.png"))
    failed_embedding(broken, "truncated file")
    build = IndexBuild.objects.get(status="succeeded")

    html = admin_client.get(DASHBOARD).content.decode()

    assert '<td data-field="products" id="count-products">8</td>' in html
    assert '<td data-field="images" id="count-images">8</td>' in html
    assert '<td data-field="embedded" id="count-embedded">7</td>' in html
    assert '<td data-field="failed" id="count-failed">1</td>' in html
    failures = html.split('id="recent-failures"')[1]
    assert "BOX-1" in failures and "truncated file" in failures
    current = html.split('id="current-build"')[1].split("</table>")[0]
    assert build.version in current and f"build #{build.pk}" in current
    assert f'<td id="build-vectors">{build.vectors} × {build.dim}</td>' in current
    assert build.vectors == 7


def test_rebuild_now_queues_a_build(admin_client, django_capture_on_commit_callbacks, monkeypatch):
    enqueued = []
    monkeypatch.setattr("search.tasks.index_build_run.delay", lambda build_id: enqueued.append(build_id))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:search_dashboard_rebuild"), follow=True)
    build = IndexBuild.objects.get()
    assert build.status == "queued"
    assert enqueued == [build.pk]
    html = response.content.decode()
    assert "Rebuild queued" in html
    assert 'id="build-queued" data-show-when="queued">' in html  # shown, not hidden
    assert "data-poll-url" in html  # the page follows the build until it ends
    assert response.redirect_chain[-1][0] == DASHBOARD


def test_idle_dashboard_does_not_poll(admin_client):
    IndexBuild.objects.create(status="succeeded")
    assert "data-poll-url" not in admin_client.get(DASHBOARD).content.decode()


def test_rebuild_needs_a_post(admin_client):
    assert admin_client.get(reverse("admin:search_dashboard_rebuild")).status_code == 405
    assert not IndexBuild.objects.exists()


def test_status_endpoint_reports_a_running_build(admin_client, client):
    IndexBuild.objects.create(status="running", total=20, done=5, failed=1)
    data = admin_client.get(reverse("admin:search_dashboard_status")).json()
    assert data["state"] == "building"
    assert (
        data["running"]["done"] == 5 and data["running"]["total"] == 20 and data["running"]["percent"] == 25
    )
    html = admin_client.get(DASHBOARD).content.decode()
    assert 'data-busy="true"' in html and "data-poll-url" in html
    assert client.get(reverse("admin:search_dashboard_status")).status_code == 302
