"""Reads shared by the search services: one definition each, used by query, status and builds alike."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Case, F, Min, Q, QuerySet, When

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
    until = _built_until(fingerprint, serving)
    if until is None:
        return done
    return done.filter(Q(updated_at__gt=until) | Q(image__product__updated_at__gt=until))


def fresh_since(fingerprint: str, serving: ServingIndex | None) -> datetime | None:
    """Since when the longest-waiting fresh embedding has waited for a build (None: none waits): its
    embedding time, or its product's change when the vector is older than the build (re-activated)."""
    fresh = fresh_embeddings(fingerprint, serving)
    until = _built_until(fingerprint, serving)
    if until is None:
        return fresh.aggregate(since=Min("updated_at"))["since"]
    became_fresh = Case(
        When(updated_at__gt=until, then=F("updated_at")), default=F("image__product__updated_at")
    )
    return fresh.aggregate(since=Min(became_fresh))["since"]


def _built_until(fingerprint: str, serving: ServingIndex | None) -> datetime | None:
    """The newest embedding update the serving build of this model holds (None: no such build)."""
    if serving is None or serving.fingerprint != fingerprint:
        return None
    return serving.until
