"""Embedding product photos: one row per (photo, model), bad photos fail once with a reason."""

import numpy as np
import pytest

from search.embedder import current_embedder
from search.models import ImageEmbedding
from search.services import (
    EmbeddingStorageError,
    catalog_embed_pending,
    image_embed,
    images_embed,
    index_status,
)
from search.services import embeddings as embeddings_module
from search.services.state import vector_from_bytes
from tests.search.shop_helpers import add_product

pytestmark = pytest.mark.django_db


def corrupt(image) -> None:
    """Overwrite a stored photo with garbage (a damaged file on disk)."""
    with open(image.image.path, "wb") as handle:
        handle.write(b"\x00garbage, not a picture")


def test_a_new_photo_is_embedded_after_commit(photo_bytes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        product = add_product("cup", photo_bytes("cup.webp"))
    image = product.images.get()
    assert not ImageEmbedding.objects.exists()  # nothing happens before the commit

    for callback in callbacks:
        callback()

    embedding = ImageEmbedding.objects.get(image=image)
    vector = vector_from_bytes(embedding.vector)
    assert embedding.status == "done" and embedding.fingerprint == current_embedder().fingerprint
    assert embedding.dim == current_embedder().dim == vector.shape[0]
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
    assert embedding.content_sha256 == image.sha256


def test_an_embedded_photo_is_not_embedded_again(shop):
    products, _ = shop
    image_id = products["cup"].images.get().pk
    first = image_embed(image_id=image_id, schedule_build=False)

    again = image_embed(image_id=image_id, schedule_build=False)

    assert again.pk == first.pk and again.attempts == 1 and again.updated_at == first.updated_at


def test_a_broken_photo_is_marked_failed_with_a_reason_and_not_retried(shop):
    products, _ = shop
    image = products["pan"].images.get()
    corrupt(image)

    failed = image_embed(image_id=image.pk, schedule_build=False)
    again = image_embed(image_id=image.pk, schedule_build=False)

    assert failed.status == "failed" and "not an image" in failed.error and failed.vector is None
    assert again.attempts == 1  # settled: not tried again
    status = index_status()
    assert status.failed == 1 and status.recent_failures[0].product_sku == "pan"
    assert "not an image" in status.recent_failures[0].reason


def test_a_missing_photo_file_is_marked_failed(shop):
    products, _ = shop
    image = products["chair"].images.get()
    image.image.storage.delete(image.image.name)

    embedding = image_embed(image_id=image.pk, schedule_build=False)

    assert embedding.status == "failed" and "missing from storage" in embedding.error


def _unmounted():
    return PermissionError("storage is not mounted")


def _object_store_down():
    from botocore.exceptions import ClientError  # what django-storages' S3 backend raises

    return ClientError({"Error": {"Code": "503", "Message": "storage is not mounted"}}, "GetObject")


@pytest.mark.parametrize("error", [_unmounted, _object_store_down], ids=["disk", "s3"])
def test_a_storage_error_is_raised_for_a_retry_and_marks_nothing(shop, monkeypatch, error):
    products, _ = shop

    def unreadable(image):
        raise error()

    monkeypatch.setattr(embeddings_module, "_read_photo", unreadable)

    with pytest.raises(EmbeddingStorageError, match="storage is not mounted"):
        image_embed(image_id=products["cup"].images.get().pk, schedule_build=False)
    assert not ImageEmbedding.objects.exists()


def test_a_deleted_photo_is_skipped(shop):
    products, _ = shop
    image_id = products["cup"].images.get().pk
    products["cup"].images.all().delete()

    assert image_embed(image_id=image_id, schedule_build=False) is None


def test_batch_embedding_reports_progress_and_one_bad_photo_does_not_stop_it(shop):
    products, _ = shop
    corrupt(products["hammer"].images.get())
    calls = []

    summary = images_embed(
        image_ids=[p.images.get().pk for p in products.values()],
        progress=lambda done, failed, total: calls.append((done, failed, total)),
        schedule_build=False,
    )

    assert (summary.embedded, summary.failed, summary.skipped) == (5, 1, 0)
    assert calls[0] == (0, 0, 6) and calls[-1] == (5, 1, 6)
    assert ImageEmbedding.objects.filter(status="done").count() == 5


@pytest.mark.uncached_vectors  # both vectors must come from the model, not one from the other
def test_batch_vectors_equal_one_at_a_time_vectors(shop, photo_bytes):
    products, _ = shop
    images_embed(image_ids=[p.images.get().pk for p in products.values()], schedule_build=False)
    from search.embedding import load_image

    cup = ImageEmbedding.objects.get(image__product=products["cup"])
    picture = load_image(photo_bytes("cup.webp"), max_pixels=10**8, draft_size=256)
    alone = current_embedder().embed_one(picture)
    assert float(np.dot(vector_from_bytes(cup.vector), alone)) == pytest.approx(1.0, abs=1e-4)


def test_catalog_embed_pending_only_embeds_what_is_pending(shop, photo_bytes):
    first = catalog_embed_pending()
    add_product("apple", photo_bytes("apple.jpg"))

    second = catalog_embed_pending()

    assert first.embedded == 6 and second.embedded == 1
    assert index_status().pending == 0
