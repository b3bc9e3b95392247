"""What the catalog announces, and what it asks of the apps built on it.

The catalog imports no other app of the house: data flows catalog -> search, never back. Apps that
need to react to the catalog (search embeds new photos, screens uploads with its model, finds
look-alike photos) connect receivers to these signals in their AppConfig.ready.

- ``photo_stored`` (kwargs ``image_id``): a new photo row is committed. Sent after the transaction
  that stored it commits, so a receiver may enqueue work that reads the row.
- ``photo_screening`` (kwargs ``picture`` (upright RGB PIL image), ``sha256``, ``phash``, ``product``):
  asked before a photo is stored, outside any database transaction. A receiver refuses the photo by
  raising ``catalog.services.ImageRejected``, or returns a list of ``PhotoWarning``.
- ``flagged_image_stored`` (kwargs ``flagged_id``): a picture was flagged (committed); a receiver may
  compute what it needs to recognise re-shot copies of it.
- ``products_changed`` (kwargs ``product_ids``): products were changed in bulk without ``save()``
  (e.g. (de)activated); sent after the commit. Single saves are seen through Django's ``post_save``.
- ``look_alike_photo_pairs`` (no kwargs): asked by the near-duplicates page; a receiver returns pairs of
  ProductImage ids it considers the same picture (e.g. by embedding similarity).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.dispatch import Signal

photo_stored = Signal()
photo_screening = Signal()
flagged_image_stored = Signal()
look_alike_photo_pairs = Signal()
products_changed = Signal()


@dataclass(frozen=True)
class PhotoWarning:
    """A note about an accepted photo, e.g. another product already has a near-identical one."""

    message: str
    product_id: int | None = None  # the other product it is about, for a link where one is shown

    def __str__(self) -> str:
        return self.message


def screening_warnings(**kwargs) -> list[PhotoWarning]:
    """Ask every connected screen about a photo; ImageRejected from any of them propagates."""
    warnings: list[PhotoWarning] = []
    for _receiver, response in photo_screening.send(sender=None, **kwargs):
        warnings.extend(response or [])
    return warnings
