"""Which embedding tasks a stored photo queues: one for each new photo, none for a photo whose vector is
fresh already, such as the photos `load_demo` stores and then embeds itself (issue 11)."""

import pytest

from search import tasks
from search.models import ImageEmbedding
from search.services import catalog_embed_pending, embedding_inline, stale_images_embed_request
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch) -> list[tuple[str, list[int]]]:
    """The embedding tasks sent to the broker, as (task name, photo ids), instead of running them."""
    sent: list[tuple[str, list[int]]] = []
    monkeypatch.setattr(tasks.embed_image, "delay", lambda image_id: sent.append(("embed_image", [image_id])))
    monkeypatch.setattr(tasks.embed_images, "delay", lambda ids: sent.append(("embed_images", list(ids))))
    return sent


def photo_ids(product) -> list[int]:
    return sorted(product.images.values_list("pk", flat=True))


def test_a_new_photo_queues_its_embedding(queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        product = ProductFactory(photos=["cup.webp"])

    assert queued == [("embed_image", photo_ids(product))]


def test_photos_the_caller_embeds_itself_queue_nothing(queued, django_capture_on_commit_callbacks):
    with embedding_inline() as stored:
        with django_capture_on_commit_callbacks(execute=True):
            product = ProductFactory(photos=["cup.webp", "pan.webp"])
        catalog_embed_pending()

    assert stored == photo_ids(product)
    assert ImageEmbedding.objects.filter(image__product=product, status="done").count() == 2
    assert queued == []


def test_photos_left_unembedded_by_the_caller_are_queued_in_one_task(
    queued, django_capture_on_commit_callbacks
):
    with embedding_inline():
        with django_capture_on_commit_callbacks(execute=True):
            product = ProductFactory(photos=["cup.webp", "pan.webp"])
        assert queued == []  # not one by one while the caller may still embed them

    assert queued == [("embed_images", photo_ids(product))]


def test_a_photo_whose_vector_is_fresh_is_not_queued_again(queued, django_capture_on_commit_callbacks):
    with embedding_inline():
        with django_capture_on_commit_callbacks(execute=True):
            embedded = ProductFactory(photos=["cup.webp"])
            waiting = ProductFactory(photos=["pan.webp"])
        catalog_embed_pending()
    assert queued == []
    stale_ids = photo_ids(waiting)
    ImageEmbedding.objects.filter(image_id__in=stale_ids).delete()  # e.g. its embedding was forgotten

    requested = stale_images_embed_request(image_ids=photo_ids(embedded) + stale_ids)

    assert requested == stale_ids
    assert queued == [("embed_image", stale_ids)]
