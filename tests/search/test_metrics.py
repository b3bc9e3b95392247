"""GET /metrics: who may read it, searches counted in one place (API, page, admin alike), and the
gauges computed when it is scraped (catalog, index, builds, task queue). The real gunicorn with two
workers is in tests/test_metrics_gunicorn.py."""

import io
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from search.models import IndexBuild
from tests.conftest import require_service
from tests.search.shop_helpers import add_product, build_now

pytestmark = pytest.mark.django_db

METRICS = "/metrics"
SEARCH = "/api/v1/search/"


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get(METRICS, **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def upload(name: str, data: bytes):
    file = io.BytesIO(data)
    file.name = name
    return file


# --- who may read it ----------------------------------------------------------------------------


def test_metrics_answer_loopback_by_default_and_refuse_other_addresses(client):
    assert client.get(METRICS, REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get(METRICS, REMOTE_ADDR="::1").status_code == 200
    assert client.get(METRICS, REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200  # a dual-stack socket
    refused = client.get(METRICS, REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == 403
    assert b"shop_search" not in refused.content


def test_a_request_through_a_proxy_is_refused_even_from_loopback(client):
    """Behind nginx on the same machine every request comes from 127.0.0.1: the header gives it away."""
    assert client.get(METRICS, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 403
    assert client.get(METRICS, REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="203.0.113.7").status_code == 403


def test_allowed_networks_and_bearer_token_come_from_settings(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.1.0.0/16"]
    settings.METRICS_BEARER_TOKEN = "s3cret-token"

    assert client.get(METRICS, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get(METRICS, REMOTE_ADDR="127.0.0.1").status_code == 403  # no longer in the list
    from_anywhere = {"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    assert client.get(METRICS, HTTP_AUTHORIZATION="Bearer s3cret-token", **from_anywhere).status_code == 200
    assert client.get(METRICS, HTTP_AUTHORIZATION="Bearer wrong", **from_anywhere).status_code == 403
    assert client.get(METRICS, **from_anywhere).status_code == 403


# --- searches, counted in one place ---------------------------------------------------------------


def test_an_api_search_is_counted_and_timed_by_stage(client, shop, photo_bytes):
    build_now()
    before = scrape(client)

    response = client.post(SEARCH, {"image": upload("q.webp", photo_bytes("cup.webp")), "k": "3"})
    assert response.status_code == 200

    after = scrape(client)
    ok = {"outcome": "ok", "code": ""}
    assert (
        value(after, "shop_search_searches_total", **ok)
        == value(before, "shop_search_searches_total", **ok) + 1
    )
    for stage in ("read", "validate", "model", "index", "db", "total"):
        count = "shop_search_search_seconds_count"
        assert value(after, count, stage=stage) == value(before, count, stage=stage) + 1, stage
    total = value(after, "shop_search_search_seconds_sum", stage="total") - value(
        before, "shop_search_search_seconds_sum", stage="total"
    )
    assert 0 < total < 60  # seconds, not the milliseconds of SearchResult.timings
    assert value(after, "shop_search_searches_in_progress") == 0


def test_refused_and_unavailable_searches_are_counted_with_the_apis_error_code(client, request):
    before = scrape(client)
    response = client.post(SEARCH, {"image": upload("q.jpg", b"not a picture at all")})
    assert response.status_code == 400 and response.json()["code"] == "not_an_image"

    request.getfixturevalue("model_fails")  # from here on
    with open("tests/photos/cup.webp", "rb") as photo:
        unavailable = client.post(SEARCH, {"image": upload("q.webp", photo.read())})
    assert unavailable.status_code == 503 and unavailable.json()["code"] == "search_unavailable"

    after = scrape(client)
    for outcome, code in (("rejected", "not_an_image"), ("unavailable", "search_unavailable")):
        name, labels = "shop_search_searches_total", {"outcome": outcome, "code": code}
        assert value(after, name, **labels) == value(before, name, **labels) + 1, (outcome, code)
    # Failed searches have no stage timings: only searches that ran are timed.
    count = "shop_search_search_seconds_count"
    assert value(after, count, stage="total") == value(before, count, stage="total")


def test_the_shopper_page_and_the_admin_are_counted_by_the_same_service(
    client, admin_client, shop, photo_path
):
    from catalog.models import Product

    build_now()
    before = scrape(client)
    with photo_path("hammer2.webp").open("rb") as photo:
        assert client.post(reverse("shop-by-photo"), {"image": photo}).status_code == 200
    hammer = Product.objects.get(sku="hammer")
    admin_page = reverse("admin:catalog_product_photo_search", args=[hammer.pk])
    assert admin_client.get(admin_page).status_code == 200

    after = scrape(client)
    ok = {"outcome": "ok", "code": ""}
    assert (
        value(after, "shop_search_searches_total", **ok)
        == value(before, "shop_search_searches_total", **ok) + 2
    )


# --- gauges computed at scrape time ---------------------------------------------------------------


def test_catalog_index_and_embedding_gauges_follow_the_database(client, shop, photo_bytes):
    from search.services import image_embed

    empty = scrape(client)
    assert value(empty, "shop_search_embeddings", status="pending") == 6
    assert value(empty, "shop_search_index_state", state="empty") == 1
    assert ("shop_search_index_vectors", ()) not in empty  # no index: absent, not a made-up 0

    build = build_now()
    apple = add_product("apple", photo_bytes("apple.jpg"))
    image_embed(image_id=apple.images.get().pk, schedule_build=False)
    waiting = add_product("orange", photo_bytes("orange.jpg"))
    assert waiting.images.exists()

    samples = scrape(client)
    assert value(samples, "shop_search_products") == 8 and value(samples, "shop_search_photos") == 8
    assert value(samples, "shop_search_embeddings", status="done") == 7
    assert value(samples, "shop_search_embeddings", status="pending") == 1
    assert value(samples, "shop_search_embeddings", status="failed") == 0
    assert value(samples, "shop_search_embeddings_fresh") == 1
    assert 0 <= value(samples, "shop_search_embeddings_fresh_oldest_seconds") < 60
    assert value(samples, "shop_search_index_vectors") == 6
    build.refresh_from_db()
    assert value(samples, "shop_search_index_size_bytes") == build.size_bytes > 0
    assert 0 <= value(samples, "shop_search_index_age_seconds") < 60
    assert value(samples, "shop_search_index_state", state="stale") == 1
    assert value(samples, "shop_search_index_state", state="ready") == 0
    assert value(samples, "shop_search_index_degraded") == 0
    assert value(samples, "shop_search_index_info", published=build.version, serving=build.version) == 1
    assert (
        value(samples, "shop_search_model_available") == 1
        and value(samples, "shop_search_model_fallback") == 1
    )
    assert value(samples, "shop_search_state_scrape_errors", group="index") == 0


def test_index_age_counts_from_the_build(client, shop):
    build = build_now()
    IndexBuild.objects.filter(pk=build.pk).update(finished_at=timezone.now() - timedelta(hours=3))

    age = value(scrape(client), "shop_search_index_age_seconds")
    assert 3 * 3600 <= age < 3 * 3600 + 60


def test_build_durations_are_a_histogram_over_every_finished_build(client):
    now = timezone.now()
    for seconds, status in ((3, "succeeded"), (40, "succeeded"), (700, "failed")):
        IndexBuild.objects.create(
            status=status, started_at=now - timedelta(seconds=seconds), finished_at=now, error="x"
        )
    IndexBuild.objects.create(status="running", started_at=now - timedelta(seconds=90))
    IndexBuild.objects.create(status="queued")

    samples = scrape(client)
    name = "shop_search_index_build_duration_seconds"
    assert value(samples, f"{name}_count", status="succeeded") == 2
    assert value(samples, f"{name}_sum", status="succeeded") == pytest.approx(43)
    assert value(samples, f"{name}_bucket", status="succeeded", le="5.0") == 1
    assert value(samples, f"{name}_bucket", status="succeeded", le="60.0") == 2
    assert value(samples, f"{name}_bucket", status="failed", le="600.0") == 0
    assert value(samples, f"{name}_bucket", status="failed", le="1800.0") == 1
    assert value(samples, f"{name}_bucket", status="failed", le="+Inf") == 1
    for status, count in (("succeeded", 2), ("failed", 1), ("running", 1), ("queued", 1)):
        assert value(samples, "shop_search_index_builds", status=status) == count
    assert 90 <= value(samples, "shop_search_index_build_running_seconds") < 150


def test_a_database_outage_drops_its_gauges_but_the_scrape_still_answers(client, monkeypatch):
    from django.db import OperationalError

    def down():
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("search.services.index_status", down)
    samples = scrape(client)
    assert value(samples, "shop_search_state_scrape_errors", group="index") == 1
    assert value(samples, "shop_search_state_scrape_errors", group="builds") == 0
    assert ("shop_search_products", ()) not in samples


# --- the Celery queue -----------------------------------------------------------------------------


def test_queue_length_of_the_filesystem_broker_counts_its_message_files(client, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path),
        "data_folder_out": str(tmp_path),
    }
    for n in range(3):
        (tmp_path / f"{n}_{uuid.uuid4()}.celery.msg").write_bytes(b"{}")
    (tmp_path / f"9_{uuid.uuid4()}.other.msg").write_bytes(b"{}")  # another queue

    assert value(scrape(client), "shop_search_celery_queue_length", queue="celery") == 3


def test_the_memory_broker_reports_no_queue_length(client):
    assert not any(name == "shop_search_celery_queue_length" for name, _ in scrape(client))


def test_queue_length_of_redis_is_the_llen_of_the_queue_and_its_priority_lists(client, settings):
    import redis

    url = require_service("TEST_REDIS_URL")
    queue = f"metrics-test-{uuid.uuid4().hex}"
    settings.CELERY_BROKER_URL = url
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    server = redis.Redis.from_url(url)
    keys = [queue, f"{queue}\x06\x163", f"{queue}\x06\x169"]
    try:
        server.lpush(keys[0], "a", "b", "c")
        server.lpush(keys[1], "d")
        server.lpush(keys[2], "e")
        server.lpush(f"{queue}-other", "f")
        assert value(scrape(client), "shop_search_celery_queue_length", queue=queue) == 5
        server.rpop(keys[0])
        assert value(scrape(client), "shop_search_celery_queue_length", queue=queue) == 4
    finally:
        server.delete(*keys, f"{queue}-other")
