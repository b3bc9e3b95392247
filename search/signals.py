"""The only signals of search: delete a feedback's photo once the row's deletion has committed."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import SearchFeedback


@receiver(post_delete, sender=SearchFeedback)
def search_feedback_delete_photo(sender, instance: SearchFeedback, **kwargs) -> None:
    # Content-addressed: the feedback on every hit of one photo shares its file; keep it while used.
    if not instance.photo or SearchFeedback.objects.filter(photo=instance.photo.name).exists():
        return
    storage, name = instance.photo.storage, instance.photo.name
    transaction.on_commit(lambda: storage.delete(name))
