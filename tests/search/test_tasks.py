"""Celery tasks: eager runs in the normal suite, plus one run on a real worker with Redis + PostgreSQL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.exceptions import Retry
from django.db import connection

from search.models import ImageEmbedding, IndexBuild
from search.services import embeddings as embeddings_module
from search.services import index_build_request
from search.tasks import build_index, embed_image, embed_images
from tests.conftest import require_service
from tests.search.shop_helpers import (
    add_product,
    search_photo,
    shop,  # noqa: F401 (fixture)
)

# ruff: noqa: F811 - imported fixtures are redefined as arguments on purpose

REPO = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT = 120  # seconds for the worker to load the model, embed 3 photos and build


@pytest.mark.django_db
def test_embed_task_marks_a_broken_photo_failed_without_retrying(shop):
    products, _ = shop
    image = products["cup"].images.get()
    Path(image.image.path).write_bytes(b"not a photo")

    assert embed_image.delay(image.pk).get() == "failed"
    assert ImageEmbedding.objects.get(image=image).attempts == 1


@pytest.mark.django_db
def test_embed_task_retries_a_storage_error(shop, monkeypatch):
    products, _ = shop
    image = products["cup"].images.get()
    real_read, calls = embeddings_module._read_photo, []

    def flaky_read(photo):
        calls.append(photo.pk)
        if len(calls) == 1:
            raise OSError("NFS server not responding")
        return real_read(photo)

    monkeypatch.setattr(embeddings_module, "_read_photo", flaky_read)
    # Eager mode stops at the retry request (a worker would re-run the task after a backoff).
    with pytest.raises(Retry, match="NFS server not responding"):
        embed_image.apply(args=[image.pk])
    assert not ImageEmbedding.objects.filter(image=image).exists()  # not marked failed

    assert embed_image.apply(args=[image.pk]).get() == "done"  # the retry
    assert len(calls) == 2


@pytest.mark.django_db
def test_embed_images_and_build_index_tasks(shop, django_capture_on_commit_callbacks):
    products, _ = shop
    ids = [product.images.get().pk for product in products.values()]

    with django_capture_on_commit_callbacks(execute=True):
        counts = embed_images.delay(ids[:3]).get()  # new vectors and no index: a build is requested

    assert counts == {"embedded": 3, "failed": 0, "skipped": 0}
    build = IndexBuild.objects.get()
    assert build.status == "succeeded" and build.vectors == 6  # the build embedded the other 3 first
    assert build_index.delay(build.pk).get() == "succeeded"  # a redelivered task does nothing new
    assert embed_image.delay(10**9).get() == "gone"


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="threads need a server database; runs in `make test-postgres`",
)
@pytest.mark.django_db(transaction=True)
def test_two_workers_never_build_at_once(shop, monkeypatch):
    import threading

    import search.index

    real_build, running, overlaps = search.index.index_build, [], []

    def slow_build(*args, **kwargs):
        running.append(1)
        overlaps.append(len(running))
        time.sleep(1.0)
        try:
            return real_build(*args, **kwargs)
        finally:
            running.pop()

    monkeypatch.setattr(search.index, "index_build", slow_build)
    builds = [IndexBuild.objects.create(), IndexBuild.objects.create()]

    def worker(build_id: int) -> None:
        try:
            build_index.delay(build_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=[build.pk]) for build in builds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert max(overlaps) == 1  # never two index builds at the same moment
    # The one that could not start was run after the other, as its follow-up.
    assert set(IndexBuild.objects.filter(pk__in=[b.pk for b in builds]).values_list("status", flat=True)) == {
        "succeeded"
    }


# --- a real worker ---------------------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{host}:{port}/{db['NAME']}"


def _worker_env(settings, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """The worker uses the production settings module pointed at the test's database, broker and files."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CELERY_")}
    env.update(
        DJANGO_SETTINGS_MODULE="shop_search.settings.base",
        SECRET_KEY="worker-test-secret",
        DATABASE_URL=_database_url(),
        CELERY_BROKER_URL=redis_url,
        SHOP_SEARCH_VAR_DIR=str(tmp_path / "var"),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        SEARCH_INDEX_DIR=str(settings.SEARCH_INDEX_DIR),
        # The same model as this test process (offline fallback): same fingerprint.
        SEARCH_BACKBONE=settings.SEARCH_BACKBONE,
        SEARCH_ALLOW_DOWNLOAD="0",
        TORCH_HOME=settings.SEARCH_TORCH_HOME,
        SEARCH_TORCH_THREADS="1",
        SEARCH_BATCH_SIZE=str(settings.SEARCH_BATCH_SIZE),
    )
    return env


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "shop_search", "worker", "--pool=solo", "-c", "1"]
    command += ["--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=5)


def _wait_for(check, worker: subprocess.Popen, log: Path, what: str):
    deadline = time.monotonic() + WORKER_TIMEOUT
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        assert worker.poll() is None, f"worker exited early:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_real_worker_embeds_builds_and_the_index_serves(settings, photo_bytes, tmp_path):
    redis_url = require_service("TEST_REDIS_URL")
    if connection.vendor != "postgresql":
        pytest.skip("needs a database the worker process can share: run via `make test-postgres`")
    from shop_search.celery import app

    previous = {"task_always_eager": app.conf.task_always_eager, "broker_url": app.conf.broker_url}
    app.conf.update(task_always_eager=False, broker_url=redis_url)  # enqueue for real, to Redis
    log = tmp_path / "worker.log"
    worker = _start_worker(_worker_env(settings, redis_url, tmp_path), log)
    try:
        products = [
            add_product(sku, photo_bytes(name))
            for sku, name in [("cup", "cup.webp"), ("pan", "pan.webp"), ("chair", "chair.webp")]
        ]
        done = ImageEmbedding.objects.filter(status="done")
        _wait_for(lambda: done.count() == 3, worker, log, "the worker to embed 3 photos")
        build = index_build_request()
        _wait_for(
            lambda: IndexBuild.objects.filter(pk=build.pk, status__in=["succeeded", "failed"]).first(),
            worker,
            log,
            "the worker to build the index",
        )
        build.refresh_from_db()
        assert build.status == "succeeded", build.error
        assert "search.build_index" in log.read_text()  # the worker did it, not this process
        assert build.vectors == 3
        _wait_for(
            lambda: not IndexBuild.objects.filter(status__in=["queued", "running"]).exists(),
            worker,
            log,
            "follow-up builds to finish",
        )
    finally:
        _stop_worker(worker)
        app.conf.update(previous)
    hits = search_photo(photo_bytes("pan.webp"), k=3)
    assert hits[0].product == products[1] and hits[0].score == pytest.approx(1.0, abs=1e-3)
