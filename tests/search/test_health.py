"""GET /healthz (the process answers) and GET /readyz (model loaded, index servable, database and broker
reachable): JSON with 200 or 503, and each check saying what it found."""

import socket
import threading

import pytest
from django.conf import settings
from django.db import OperationalError, connection

import search.health
from search.embedder import current_embedder
from search.index import current_index
from tests.search.shop_helpers import build_now
from tests.search.test_index_integrity_services import damage_published

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_model_loader(monkeypatch):
    """Each test starts with no load attempt remembered."""
    loader = search.health._ModelLoader()
    monkeypatch.setattr(search.health, "model_loader", loader)
    yield loader
    loader.wait(60)


def readyz(client):
    response = client.get("/readyz")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    return response.status_code, response.json()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("the database is down")

    with django_assert_num_queries(0), monkeypatch.context() as database:
        database.setattr(connection, "ensure_connection", down)
        database.setattr(connection, "cursor", down)
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert client.post("/healthz").status_code == 405


def test_ready_with_the_model_the_serving_index_the_database_and_the_broker(client, shop):
    current_embedder()  # as gunicorn's post_worker_init does when a worker starts
    build = build_now()

    status, body = readyz(client)

    assert status == 200 and body["status"] == "ready"
    checks = body["checks"]
    assert checks["model"]["ok"] and checks["model"]["name"] == "efficientnet_lite0"
    assert (
        checks["model"]["fallback"] is True
        and checks["model"]["fingerprint"] == current_embedder().fingerprint
    )
    index = checks["index"]
    assert index["ok"] and index["published"] == index["serving"] == build.version
    assert index["vectors"] == 6 and index["fingerprint"] == build.fingerprint and index["detail"] == ""
    assert checks["database"] == {"ok": True, "detail": "", "vendor": connection.vendor}
    assert checks["broker"] == {"ok": True, "detail": "", "transport": "memory"}


def test_no_index_yet_is_ready_since_stored_vectors_are_searched_exactly(client):
    current_embedder()
    status, body = readyz(client)

    assert status == 200
    assert body["checks"]["index"]["serving"] is None
    assert "No index is published yet" in body["checks"]["index"]["detail"]


def test_while_the_model_loads_the_process_is_not_ready_then_it_is(client, monkeypatch, fresh_model_loader):
    release, loaded, loads = threading.Event(), [], []
    model = current_embedder()

    def slow_load(config):
        loads.append(1)
        release.wait(30)
        loaded.append(model)
        return model

    monkeypatch.setattr("search.embedder.loaded_embedder", lambda: loaded[0] if loaded else None)
    monkeypatch.setattr("search.embedder._embedder", None)
    monkeypatch.setattr("search.embedding.build_embedder", slow_load)

    status, body = readyz(client)
    assert status == 503 and body["status"] == "not ready"
    assert body["checks"]["model"] == {"ok": False, "detail": "The image model is loading."}
    assert readyz(client)[0] == 503  # asked again meanwhile: still one load, not a second
    assert len(loads) == 1

    release.set()
    fresh_model_loader.wait(30)
    status, body = readyz(client)
    assert status == 200 and body["checks"]["model"]["name"] == model.name


def test_a_model_that_cannot_be_loaded_is_503_with_the_reason_and_no_server_path(
    client, model_fails, fresh_model_loader
):
    readyz(client)
    fresh_model_loader.wait(30)
    status, body = readyz(client)

    assert status == 503
    detail = body["checks"]["model"]["detail"]
    assert "The image model could not be loaded: no weights in <path>" == detail
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def test_a_corrupt_index_with_nothing_to_serve_instead_is_503(client, shop_catalog):
    current_embedder()
    version = damage_published("vectors.npy")

    status, body = readyz(client)

    assert status == 503
    index = body["checks"]["index"]
    assert index["ok"] is False and index["published"] == version and index["serving"] is None
    assert f"The published index build {version} is damaged" in index["detail"]
    assert str(settings.SEARCH_INDEX_DIR) not in str(body)


def test_a_corrupt_index_with_the_previous_build_serving_is_ready_and_says_so(client, shop_catalog):
    current_embedder()
    older = current_index(settings.SEARCH_INDEX_DIR).version
    newer = build_now().version
    damage_published("vectors.npy")

    status, body = readyz(client)

    assert status == 200
    index = body["checks"]["index"]
    assert index["ok"] and index["published"] == newer and index["serving"] == older
    assert f"serving the previous build {older}" in index["detail"]


def test_an_unreachable_redis_broker_is_503_without_its_url(client, settings):
    current_embedder()
    settings.CELERY_BROKER_URL = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"

    status, body = readyz(client)

    assert status == 503
    broker = body["checks"]["broker"]
    assert broker["ok"] is False and broker["transport"] == "redis"
    assert "cannot be reached" in broker["detail"] and "hunter2" not in str(body)


def test_a_reachable_redis_broker_is_ready(client, settings):
    from tests.conftest import require_service

    current_embedder()
    settings.CELERY_BROKER_URL = require_service("TEST_REDIS_URL")
    status, body = readyz(client)
    assert status == 200 and body["checks"]["broker"] == {"ok": True, "detail": "", "transport": "redis"}


def test_a_missing_filesystem_broker_folder_is_503(client, settings, tmp_path):
    current_embedder()
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "gone")}
    status, body = readyz(client)
    assert status == 503 and body["checks"]["broker"]["ok"] is False

    (tmp_path / "gone").mkdir()
    assert readyz(client)[0] == 200


def test_an_unreachable_database_is_503(client, monkeypatch):
    current_embedder()

    def refused(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refused)
    status, body = readyz(client)

    assert status == 503
    assert body["checks"]["database"]["ok"] is False
    assert "connection refused" in body["checks"]["database"]["detail"]
