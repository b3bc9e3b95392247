"""The only signals in the house: delete stored files once the row's deletion has committed."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import FlaggedImage, ProductImage


def _delete_file_after_commit(field_file) -> None:
    if not field_file or not field_file.name:
        return
    storage, name = field_file.storage, field_file.name
    transaction.on_commit(lambda: storage.delete(name))


@receiver(post_delete, sender=ProductImage)
def product_image_delete_file(sender, instance: ProductImage, **kwargs) -> None:
    # Content-addressed names can be shared by two products holding the same photo: keep the file then.
    if ProductImage.objects.filter(image=instance.image.name).exists():
        return
    _delete_file_after_commit(instance.image)


@receiver(post_delete, sender=FlaggedImage)
def flagged_image_delete_file(sender, instance: FlaggedImage, **kwargs) -> None:
    _delete_file_after_commit(instance.image)
