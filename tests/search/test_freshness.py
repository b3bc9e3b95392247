"""Index freshness that says the truth (issue 11): shoppers are told nothing about a photo waiting for
the next build (it is searched exactly at once), the admin dashboard explains each state in words, and
the time-based policy folds waiting photos into a build (time moved with ``now=`` or old timestamps)."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from catalog.models import Product
from search.models import ImageEmbedding, IndexBuild
from search.services import image_embed, index_fold_in_if_due, index_status
from tests.search.shop_helpers import add_product, build_now

pytestmark = pytest.mark.django_db
DASHBOARD = reverse("admin:search_dashboard")
FALLBACK_NOTICE = "Search is running on a fallback model, so matches may be less accurate."


def notices(html: str) -> list[str]:
    import re

    return re.findall(r'<p class="notice notice--\w+">([^<]*)</p>', html)


def embedded_product(sku: str, photo: bytes) -> Product:
    """A product added and embedded by the worker, the size-based rebuild not reached yet."""
    product = add_product(sku, photo)
    image_embed(image_id=product.images.get().pk, schedule_build=False)
    return product


def queued_builds() -> int:
    return IndexBuild.objects.filter(status=IndexBuild.Status.QUEUED).count()


# --- what shoppers see ----------------------------------------------------------------------------


def test_a_shopper_sees_nothing_about_indexing_after_a_product_is_added_and_finds_it(
    client, shop_catalog, photo_bytes
):
    orange = embedded_product("ORA-1", photo_bytes("orange.jpg"))
    assert index_status().state == "stale" and index_status().fresh == 1  # waiting for the next build

    with open("tests/photos/orange.jpg", "rb") as photo:
        html = client.post(reverse("shop-by-photo"), {"image": photo}).content.decode()
    product_page = client.get(reverse("product-detail", kwargs={"pk": orange.pk})).content.decode()

    assert notices(html) == [FALLBACK_NOTICE]  # the model is a fallback in the tests: that one stays
    assert notices(product_page) == [FALLBACK_NOTICE]
    assert "indexed" not in html and "rebuilt" not in html
    first_card = html.split('class="card__name">', 1)[1].split("<", 1)[0]
    assert first_card == orange.name  # searchable at once, before any build


def test_a_model_switch_is_told_to_shoppers_also_while_its_build_runs(client, shop, settings, fresh_embedder):
    from search.embedder import reset_embedder

    build_now()
    settings.SEARCH_CENTER_CROP = False  # another model fingerprint
    reset_embedder()
    IndexBuild.objects.create(status=IndexBuild.Status.RUNNING, started_at=timezone.now(), total=6)
    assert index_status().state == "building"

    html = client.get(reverse("shop-by-photo")).content.decode()
    assert "switching to a new image model" in html


def test_an_empty_index_is_told_to_shoppers_also_while_the_first_build_runs(client, shop):
    IndexBuild.objects.create(status=IndexBuild.Status.RUNNING, started_at=timezone.now(), total=6)

    html = client.get(reverse("shop-by-photo")).content.decode()
    assert "photo index is empty: no products can be found by photo yet" in html


# --- what the dashboard explains ------------------------------------------------------------------


def test_dashboard_explains_photos_searchable_now_and_when_they_join_a_build(
    admin_client, shop_catalog, photo_bytes, settings
):
    settings.SEARCH_FOLD_IN_AFTER_SECONDS = 600
    embedded_product("ORA-1", photo_bytes("orange.jpg"))
    embedded_product("BOX-1", photo_bytes("box.png"))
    add_product("BULB-1", photo_bytes("bulb.webp"))  # not embedded yet
    build = IndexBuild.objects.get(status="succeeded")

    html = admin_client.get(DASHBOARD).content.decode()
    explained = html.split('id="index-explained"', 1)[1].split("</div>", 1)[0]

    assert "up to date for search; new photos wait for the next build" not in explained  # pending first
    assert "photos waiting to be embedded" in explained
    assert f"Build #{build.pk} serves 7 vectors, built 0\xa0minutes ago." in explained
    assert "2 photos are searchable now and will be folded into the next build" in explained
    assert "(a build is requested when 1 wait, or once one has waited 10\xa0minutes; " in explained
    assert "1 photo is waiting to be embedded by a worker" in explained
    assert '<td data-field="fresh" id="count-fresh">2</td>' in html


def test_dashboard_says_up_to_date_after_a_build_and_explains_fresh_photos_singular(
    admin_client, shop_catalog, photo_bytes
):
    html = admin_client.get(DASHBOARD).content.decode()
    assert '<span data-field="state_label">up to date</span>' in html
    assert "Every embedded photo of an active product is in it." in html

    embedded_product("ORA-1", photo_bytes("orange.jpg"))
    html = admin_client.get(DASHBOARD).content.decode()
    assert (
        '<span data-field="state_label">up to date for search; new photos wait for the next build</span>'
        in html
    )
    assert "1 photo is searchable now and will be folded into the next build" in html
    assert admin_client.get(reverse("admin:search_dashboard_status")).json()["fresh"] == 1


def test_dashboard_explains_a_model_switch(admin_client, shop, settings, fresh_embedder):
    from search.embedder import reset_embedder

    old = build_now()
    settings.SEARCH_CENTER_CROP = False
    reset_embedder()

    html = admin_client.get(DASHBOARD).content.decode()
    assert f"The index was built by the previous model ({old.fingerprint}): searches use that model" in html
    assert "switching models: the previous model&#x27;s index serves" in html
    assert "6 photos are waiting to be embedded by a worker" in html


def test_dashboard_explains_a_running_build_and_an_empty_catalog(admin_client):
    html = admin_client.get(DASHBOARD).content.decode()
    assert "The catalog has no active product yet: there is nothing to search." in html

    build = IndexBuild.objects.create(status="running", started_at=timezone.now(), total=40, done=10)
    html = admin_client.get(DASHBOARD).content.decode()
    assert (
        f"Build #{build.pk} is running (10 of 40 photos embedded): searches use exact search meanwhile"
        in html
    )


# --- the time-based fold-in -----------------------------------------------------------------------


def test_a_photo_waiting_longer_than_the_setting_requests_a_build(shop_catalog, photo_bytes, settings):
    settings.SEARCH_FOLD_IN_AFTER_SECONDS = 600
    orange = embedded_product("ORA-1", photo_bytes("orange.jpg"))
    embedded_at = ImageEmbedding.objects.get(image__product=orange).updated_at

    assert index_fold_in_if_due(now=embedded_at + timedelta(seconds=599)) is None
    assert queued_builds() == 0

    requested = index_fold_in_if_due(now=embedded_at + timedelta(seconds=601))
    assert requested is not None and requested.status == IndexBuild.Status.QUEUED
    assert index_fold_in_if_due(now=embedded_at + timedelta(seconds=900)) is None  # one is queued already
    assert queued_builds() == 1

    from search.services import index_build_run

    index_build_run(build_id=requested.pk)
    assert index_status().fresh == 0 and index_status().state == "ready"
    assert index_fold_in_if_due(now=embedded_at + timedelta(days=1)) is None  # nothing waits any more


def test_nothing_waiting_or_the_policy_off_requests_nothing(shop_catalog, photo_bytes, settings):
    later = timezone.now() + timedelta(days=1)
    assert index_fold_in_if_due(now=later) is None

    embedded_product("ORA-1", photo_bytes("orange.jpg"))
    settings.SEARCH_FOLD_IN_AFTER_SECONDS = 0
    assert index_fold_in_if_due(now=later) is None
    assert queued_builds() == 0


def test_no_fold_in_while_a_build_runs_or_soon_after_one_failed(shop_catalog, photo_bytes, settings):
    settings.SEARCH_FOLD_IN_AFTER_SECONDS = 600
    embedded_product("ORA-1", photo_bytes("orange.jpg"))
    now = timezone.now() + timedelta(hours=1)

    running = IndexBuild.objects.create(status="running", started_at=now)
    assert index_fold_in_if_due(now=now) is None
    IndexBuild.objects.filter(pk=running.pk).update(status="failed", finished_at=now, error="disk full")
    assert index_fold_in_if_due(now=now + timedelta(seconds=599)) is None  # no rebuild loop
    assert index_fold_in_if_due(now=now + timedelta(seconds=601)) is not None


def test_a_reactivated_product_waits_from_its_reactivation_not_from_its_old_vector(shop_catalog, settings):
    from catalog.services import product_set_active

    settings.SEARCH_FOLD_IN_AFTER_SECONDS = 600
    cup = shop_catalog["CUP-1"]
    product_set_active(products=[cup], active=False)
    build_now()  # built without the cup
    ImageEmbedding.objects.filter(image__product=cup).update(updated_at=timezone.now() - timedelta(days=30))
    product_set_active(products=[cup], active=True)
    reactivated_at = Product.objects.get(pk=cup.pk).updated_at

    assert index_status().fresh == 1 and index_status().fresh_since == reactivated_at
    assert index_fold_in_if_due(now=reactivated_at + timedelta(seconds=599)) is None
    assert index_fold_in_if_due(now=reactivated_at + timedelta(seconds=601)) is not None


def test_the_fold_in_task_runs_on_the_beat_schedule(shop_catalog, photo_bytes, settings):
    from search.tasks import fold_in

    schedule = django_settings.CELERY_BEAT_SCHEDULE["fold-in-fresh-photos"]
    assert schedule["task"] == fold_in.name == "search.fold_in"
    assert schedule["schedule"] == float(django_settings.REAP_EVERY_SECONDS)

    settings.SEARCH_FOLD_IN_AFTER_SECONDS = 600
    orange = embedded_product("ORA-1", photo_bytes("orange.jpg"))
    assert fold_in() == "nothing waits long enough"

    # Eleven minutes later, as far as the database knows: the catalog was built half an hour ago and
    # the orange added eleven minutes ago.
    built, added = timezone.now() - timedelta(minutes=30), timezone.now() - timedelta(minutes=11)
    IndexBuild.objects.update(embeddings_until=built)
    for model in (Product, ImageEmbedding):
        model.objects.update(updated_at=built)
    Product.objects.filter(pk=orange.pk).update(updated_at=added)
    ImageEmbedding.objects.filter(image__product=orange).update(updated_at=added)
    assert index_status().fresh == 1
    assert fold_in() == f"build {IndexBuild.objects.get(status='queued').pk} requested"
