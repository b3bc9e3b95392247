from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "search"
    verbose_name = "Visual search"

    def ready(self) -> None:
        # Search builds on the catalog: it listens to what the catalog announces (catalog.hooks), the
        # catalog never calls search.
        from catalog import hooks

        from . import receivers, signals  # noqa: F401  (signals: file clean-up after delete)

        hooks.photo_stored.connect(receivers.photo_stored, dispatch_uid="search.embed_stored_photo")
        hooks.photo_screening.connect(receivers.photo_screening, dispatch_uid="search.flagged_screen")
        hooks.flagged_image_stored.connect(
            receivers.flagged_image_stored, dispatch_uid="search.flagged_embed"
        )
        hooks.look_alike_photo_pairs.connect(
            receivers.look_alike_photo_pairs, dispatch_uid="search.look_alike"
        )
