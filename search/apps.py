from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Visual search"

    def ready(self) -> None:
        # Search builds on the catalog: it listens to what the catalog announces (catalog.hooks), the
        # catalog never calls search.
        from django.db.models.signals import post_delete, post_save

        from catalog import hooks
        from catalog.models import Product, ProductImage

        from . import checks, receivers, signals  # noqa: F401  (checks: registered; signals: file clean-up)

        hooks.photo_stored.connect(receivers.photo_stored, dispatch_uid="search.embed_stored_photo")
        hooks.photo_screening.connect(receivers.photo_screening, dispatch_uid="search.flagged_screen")
        hooks.flagged_image_stored.connect(
            receivers.flagged_image_stored, dispatch_uid="search.flagged_embed"
        )
        hooks.look_alike_photo_pairs.connect(
            receivers.look_alike_photo_pairs, dispatch_uid="search.look_alike"
        )
        # Vector stores drop deleted photos and take product changes without a rebuild (vector_sync).
        post_delete.connect(receivers.photo_deleted, sender=ProductImage, dispatch_uid="search.photo_deleted")
        post_save.connect(receivers.product_saved, sender=Product, dispatch_uid="search.product_saved")
        hooks.products_changed.connect(receivers.products_changed, dispatch_uid="search.products_changed")
