"""Celery tasks: eager runs in the normal suite, plus one run on a real worker with Redis + PostgreSQL."""

import os
import time
from pathlib import Path

import pytest
from celery.exceptions import Retry
from django.db import connection

from search.models import ImageEmbedding, IndexBuild
from search.services import embeddings as embeddings_module
from search.services import index_build_request
from search.tasks import embed_image, embed_images, index_build_run
from tests.real_worker import (
    start_worker,
    stop_worker,
    wait_for,
    worker_env,
)
from tests.search.shop_helpers import add_product, search_photo


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
    assert index_build_run.delay(build.pk).get() == "succeeded"  # a redelivered task does nothing new
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
            index_build_run.delay(build_id)
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


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_real_worker_embeds_builds_and_the_index_serves(settings, photo_bytes, tmp_path, real_broker):
    log = tmp_path / "worker.log"
    worker = start_worker(worker_env(settings, real_broker, tmp_path), log)
    try:
        products = [
            add_product(sku, photo_bytes(name))
            for sku, name in [("cup", "cup.webp"), ("pan", "pan.webp"), ("chair", "chair.webp")]
        ]
        done = ImageEmbedding.objects.filter(status="done")
        wait_for(lambda: done.count() == 3, worker, log, "the worker to embed 3 photos")
        # The worker's own start-up check and the embeds request builds too; ask once those settled,
        # so this request is not created while one of them runs (see build_queue's follow-up race).
        wait_for(
            lambda: not IndexBuild.objects.filter(status__in=["queued", "running"]).exists(),
            worker,
            log,
            "the worker's own builds to finish",
        )
        build = index_build_request()
        wait_for(
            lambda: IndexBuild.objects.filter(pk=build.pk, status__in=["succeeded", "failed"]).first(),
            worker,
            log,
            "the worker to build the index",
        )
        build.refresh_from_db()
        assert build.status == "succeeded", build.error
        assert "search.index_build_run" in log.read_text()  # the worker did it, not this process
        assert build.vectors == 3
        wait_for(
            lambda: not IndexBuild.objects.filter(status__in=["queued", "running"]).exists(),
            worker,
            log,
            "follow-up builds to finish",
        )
    finally:
        stop_worker(worker)
    hits = search_photo(photo_bytes("pan.webp"), k=3)
    assert hits[0].product == products[1] and hits[0].score == pytest.approx(1.0, abs=1e-3)
