"""Reads shared by the search services: one definition each, used by query, status and builds alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from search.models import ImageEmbedding

if TYPE_CHECKING:
    from search.services.state import ServingIndex


def fresh_embeddings(fingerprint: str, serving: ServingIndex | None) -> QuerySet[ImageEmbedding]:
    """Done embeddings of active products under this model that the serving build does not hold (yet):
    embedded after it was built, or of a product changed since (e.g. re-activated: it was left out).
    Everything done counts as fresh when no build of this model serves. Searches read these exactly;
    status counts them; builds are requested when there are many."""
    done = ImageEmbedding.objects.filter(
        fingerprint=fingerprint, status=ImageEmbedding.Status.DONE, image__product__is_active=True
    )
    if serving is None or serving.fingerprint != fingerprint or serving.build is None:
        return done
    until = serving.build.embeddings_until
    if until is None:
        return done
    return done.filter(Q(updated_at__gt=until) | Q(image__product__updated_at__gt=until))
