"""Search's receivers of the catalog's announcements (catalog.hooks), connected in SearchConfig.ready.

Thin on purpose, like tasks: each one calls one service or enqueues one task.
"""

from __future__ import annotations


def photo_stored(sender, *, image_id: int, **kwargs) -> None:
    from search.services import stored_photo_embed_request

    stored_photo_embed_request(image_id=image_id)  # sent after the commit: the worker sees the row


def photo_screening(sender, **photo) -> list:
    from search.services.moderation import flagged_image_screen

    return flagged_image_screen(**photo)


def flagged_image_stored(sender, *, flagged_id: int, **kwargs) -> None:
    from search.tasks import flagged_images_embed

    flagged_images_embed.delay()


def look_alike_photo_pairs(sender, **kwargs) -> list[tuple[int, int]]:
    from search.services.moderation import look_alike_photo_pairs as pairs

    return pairs(**kwargs)


def photo_deleted(sender, *, instance, **kwargs) -> None:
    from search.services.vector_sync import image_removed

    image_removed(image_id=instance.pk)


def product_saved(sender, **kwargs) -> None:
    from search.services.vector_sync import vector_sync_request

    vector_sync_request()


def products_changed(sender, **kwargs) -> None:
    from search.services.vector_sync import vector_sync_request

    vector_sync_request()
