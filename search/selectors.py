"""Reads shared by the search services: one definition each, used by query, status and builds alike,
and the labelled examples that staff-confirmed shopper feedback gives (confirmed_feedback_pairs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING

from django.core.files.storage import default_storage
from django.db.models import Case, F, Min, Q, QuerySet, When

from search.models import ImageEmbedding, SearchFeedback

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


@dataclass(frozen=True)
class FeedbackPair:
    """A labelled example from shoppers, confirmed by staff: this photo (or the `crop` of it) shows this
    product (or, for "not_this" pairs, does not). Unpacks as the pair ``photo, product_id``."""

    photo: str  # storage name (default_storage) of the query photo, a JPEG without EXIF
    product_id: int
    crop: tuple[float, float, float, float] | None  # x, y, w, h fractions searched; None: the whole photo
    fingerprint: str  # the model that answered the search
    rank: int  # where that model ranked the product (1 = first)
    score: float
    feedback_id: int

    def __iter__(self) -> Iterator:
        return iter((self.photo, self.product_id))

    def open(self) -> IO[bytes]:
        return default_storage.open(self.photo, "rb")


def confirmed_feedback_pairs(*, verdict: str = SearchFeedback.Verdict.THIS_ONE) -> list[FeedbackPair]:
    """Shopper feedback staff confirmed, with its photo kept, on products shoppers can still find:
    labelled examples for the relevance self-test and for training, oldest first. Feedback whose photo
    was not kept (retention off) or was purged since is no example."""
    rows = (
        SearchFeedback.objects.filter(
            review=SearchFeedback.Review.CONFIRMED, verdict=verdict, product__is_active=True
        )
        .exclude(photo="")
        .order_by("created_at", "id")
    )
    return [
        FeedbackPair(
            photo=row.photo.name,
            product_id=row.product_id,
            crop=tuple(row.crop) if row.crop else None,
            fingerprint=row.fingerprint,
            rank=row.rank,
            score=row.score,
            feedback_id=row.pk,
        )
        for row in rows
    ]
