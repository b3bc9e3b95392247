"""index_status and product_index_statuses: what the admin, page and API report."""

import pytest
from django.utils import timezone

from search.models import IndexBuild
from search.services import (
    catalog_embed_pending,
    image_embed,
    index_status,
    product_index_statuses,
)
from tests.search.shop_helpers import add_product, build_now

pytestmark = pytest.mark.django_db


def test_empty_shop_reports_the_model_and_empty_state():
    status = index_status()

    assert status.state == "empty"
    assert (status.products, status.images, status.embedded, status.pending) == (0, 0, 0, 0)
    # The test settings ask for resnet50 with no weights available: the offline fallback is used and said.
    assert status.requested == "resnet50" and status.name == "efficientnet_lite0"
    assert status.fallback and status.pretrained and not status.untrained
    assert status.fingerprint.startswith("efficientnet_lite0-") and status.dim > 0
    assert status.current_build is None and status.model_error == ""


def test_photos_not_embedded_yet_leave_the_index_empty(shop):
    status = index_status()
    assert status.state == "empty" and status.pending == 6 and status.products == 6


def test_embedded_without_a_build_is_stale_and_searched_exactly(shop):
    catalog_embed_pending()
    status = index_status()
    assert status.state == "stale" and status.embedded == 6 and status.pending == 0
    assert status.exact_fallback


def test_after_a_build_the_index_is_ready(shop):
    build = build_now()
    status = index_status()

    assert status.state == "ready" and not status.exact_fallback
    current = status.current_build
    assert (current.id, current.version, current.vectors) == (build.pk, build.version, 6)
    assert current.fingerprint_matches and current.size_bytes > 0 and current.built_at is not None


def test_a_new_photo_after_the_build_makes_the_index_stale(shop, photo_bytes):
    build_now()
    apple = add_product("apple", photo_bytes("apple.jpg"))

    assert index_status().state == "stale" and index_status().pending == 1
    image_embed(image_id=apple.images.get().pk, schedule_build=False)
    assert index_status().state == "stale" and index_status().pending == 0


def test_a_running_build_reports_its_progress(shop):
    IndexBuild.objects.create(
        status=IndexBuild.Status.RUNNING, started_at=timezone.now(), total=6, done=2, failed=1
    )
    status = index_status()

    assert status.state == "building"
    running = status.running_build
    assert (running.total, running.done, running.failed) == (6, 2, 1) and running.started_at


def test_product_index_statuses(shop, photo_bytes):
    products, _ = shop
    with open(products["pan"].images.get().image.path, "wb") as handle:
        handle.write(b"broken")
    build_now()
    embedded = add_product("apple", photo_bytes("apple.jpg"))
    image_embed(image_id=embedded.images.get().pk, schedule_build=False)
    pending = add_product("orange", photo_bytes("orange.jpg"))
    no_photo = add_product("ghost")

    statuses = product_index_statuses([products["cup"], products["pan"], embedded, pending, no_photo.pk])

    assert statuses[products["cup"].pk].state == "indexed"
    assert statuses[products["pan"].pk].state == "failed"
    assert "not an image" in statuses[products["pan"].pk].reason
    assert statuses[embedded.pk].state == "embedded"
    assert statuses[pending.pk].state == "pending"
    assert statuses[no_photo.pk].state == "no-photo"
