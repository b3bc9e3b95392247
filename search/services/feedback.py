"""Shopper feedback on search hits: "this one" / "not what I'm looking for", and its review by staff.

A search answer carries a query id per list of hits (the main results, and each thing found in the
photo): a short token, HMAC-signed with SECRET_KEY (django.core.signing), naming the photo by the
sha256 of its bytes, the crop searched, the model's fingerprint and, when retention kept the photo,
the day it was kept. Feedback must bring one back, so nobody can report on a search that never
happened, and the token carries no product: it is as valid for one hit as for another. It is opaque
to clients (they send it back as they got it) and expires after a day.

The API view and the page's no-JavaScript form both call feedback_record; the admin's actions call
feedback_review. The photo is kept with the feedback only while retention allows it (query-photo
retention, SEARCH_KEEP_QUERY_PHOTOS_DAYS): feedback_photos_purge follows the same period.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from catalog.selectors import product_get
from search.models import SearchFeedback
from search.query_photos import query_photo_name
from search.uploads import Crop, parse_crop

from .query import SearchQuery

QUERY_ID_SALT = "search.feedback.query-id"
QUERY_ID_VERSION = "1"
# Long enough for a shopper who leaves the results open over lunch; a day-old search is searched again.
QUERY_ID_MAX_AGE = timedelta(days=1)
FEEDBACK_DIR_NAME = "feedback"
MAX_RANK = 100  # the most hits one search answers (k and object_k are at most 100)
_SEPARATOR = "~"


class FeedbackRefused(ValueError):
    """Feedback that cannot be recorded. `code` is stable for clients; `message` is for people."""

    status_code = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FeedbackRecorded:
    feedback: SearchFeedback
    created: bool  # False: this query's feedback on this product was there already and was updated

    @property
    def photo_kept(self) -> bool:
        return bool(self.feedback.photo)


# --- the query id ---------------------------------------------------------------------------------


def query_id_sign(query: SearchQuery, *, crop: Crop | None = None) -> str:
    """The query id of `query`'s hits, or of the hits for `crop` of its photo (a thing found in it)."""
    crop = query.crop if crop is None else crop
    if _SEPARATOR in query.fingerprint:
        raise ValueError(f"a model fingerprint cannot contain {_SEPARATOR!r}: {query.fingerprint}")
    kept_day = _kept_day(query.kept_photo)
    fields = [
        QUERY_ID_VERSION,
        base64.urlsafe_b64encode(bytes.fromhex(query.photo_sha256)).decode().rstrip("="),
        _crop_text(crop),
        query.fingerprint,
        kept_day.strftime("%Y%m%d") if kept_day else "",
    ]
    return signing.TimestampSigner(salt=QUERY_ID_SALT).sign(_SEPARATOR.join(fields))


def query_id_read(query_id: str) -> SearchQuery:
    """The query a query id names; FeedbackRefused when it was not made here, or is over a day old."""
    signer = signing.TimestampSigner(salt=QUERY_ID_SALT)
    try:
        payload = signer.unsign(query_id, max_age=QUERY_ID_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise FeedbackRefused(
            "query_expired", "This search is more than a day old: search again to give feedback on it."
        ) from exc
    except signing.BadSignature as exc:
        raise _unknown_query() from exc
    fields = payload.split(_SEPARATOR)
    if len(fields) != 5 or fields[0] != QUERY_ID_VERSION:
        raise _unknown_query()
    _version, digest, crop_text, fingerprint, kept_day = fields
    try:
        photo_sha256 = base64.urlsafe_b64decode(digest + "=").hex()
        crop = parse_crop(crop_text)
        day = datetime.strptime(kept_day, "%Y%m%d").date() if kept_day else None
    except (binascii.Error, ValueError) as exc:  # signed by us, so only an older format lands here
        raise _unknown_query() from exc
    kept = query_photo_name(photo_sha256, day) if day else ""
    return SearchQuery(photo_sha256=photo_sha256, crop=crop, fingerprint=fingerprint, kept_photo=kept)


def _unknown_query() -> FeedbackRefused:
    return FeedbackRefused(
        "unknown_query", "This search is unknown to the shop: search again to give feedback on it."
    )


def _crop_text(crop: Crop | None) -> str:
    return "" if crop is None else ",".join(f"{round(value, 4):g}" for value in crop)


def _kept_day(name: str) -> date | None:
    # queries/<YYYY-MM-DD>/<sha256>.jpg (search.query_photos.query_photo_name)
    parts = name.split("/")
    try:
        return date.fromisoformat(parts[1]) if len(parts) == 3 else None
    except ValueError:
        return None


def query_key(query: SearchQuery) -> str:
    """One key per (photo, crop, model): feedback on the same hit of the same query is one row."""
    text = "|".join((query.photo_sha256, _crop_text(query.crop), query.fingerprint))
    return hashlib.sha256(text.encode()).hexdigest()


# --- recording and reviewing ----------------------------------------------------------------------


def feedback_record(
    *, query_id: str, product_id: int, verdict: str, rank: int, score: float
) -> FeedbackRecorded:
    """Record (or change) a shopper's verdict on hit `rank` (1 = first) of the search `query_id` names.

    Raises FeedbackRefused for a query id not made here or too old, an unknown product or verdict, or
    a rank or score out of range. The same shopper (or anyone replaying the id) clicking again changes
    the verdict of the one row; a changed verdict goes back to review.
    """
    query = query_id_read(query_id)
    if verdict not in SearchFeedback.Verdict.values:
        choices = ", ".join(SearchFeedback.Verdict.values)
        raise FeedbackRefused("bad_verdict", f"The verdict must be one of: {choices}.")
    if not 1 <= rank <= MAX_RANK or not 0.0 <= score <= 1.0:
        raise FeedbackRefused("invalid", f"The rank must be 1 to {MAX_RANK} and the score between 0 and 1.")
    product = product_get(pk=product_id, active=None)
    if product is None:
        raise FeedbackRefused("unknown_product", f"There is no product {product_id}.")
    photo = _feedback_photo(query)  # storage I/O before the transaction, not inside it
    with transaction.atomic():
        feedback, created = SearchFeedback.objects.select_for_update().get_or_create(
            query_key=query_key(query),
            product=product,
            defaults={
                "verdict": verdict,
                "photo_sha256": query.photo_sha256,
                "crop": list(query.crop) if query.crop else None,
                "fingerprint": query.fingerprint,
                "rank": rank,
                "score": score,
                "photo": photo,
            },
        )
        if not created:
            if feedback.verdict != verdict:  # the shopper changed their mind: review it again
                feedback.review = SearchFeedback.Review.PENDING
                feedback.reviewed_at, feedback.reviewed_by = None, None
            feedback.verdict, feedback.rank, feedback.score = verdict, rank, score
            feedback.photo = feedback.photo or photo
            feedback.save()
    return FeedbackRecorded(feedback=feedback, created=created)


def feedback_review(*, feedback_ids: Iterable[int], review: str, reviewer=None) -> int:
    """Confirm or reject feedback rows (the admin's actions); returns how many were changed."""
    if review not in (SearchFeedback.Review.CONFIRMED, SearchFeedback.Review.REJECTED):
        raise ValueError(f"review must be confirmed or rejected, not {review!r}")
    with transaction.atomic():
        rows = SearchFeedback.objects.filter(pk__in=list(feedback_ids))
        return rows.update(review=review, reviewed_at=timezone.now(), reviewed_by=reviewer)


def _feedback_photo(query: SearchQuery) -> str:
    """The feedback's own copy of the kept query photo (content-addressed, shared by the feedback on
    every hit of that photo), or "" when retention is off or the photo was not kept (or purged)."""
    if settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS <= 0 or not query.kept_photo:
        return ""
    name = f"{FEEDBACK_DIR_NAME}/{query.photo_sha256[:2]}/{query.photo_sha256}.jpg"
    if default_storage.exists(name):
        return name
    try:
        with default_storage.open(query.kept_photo, "rb") as kept:
            data = kept.read()
    except (FileNotFoundError, OSError):
        return ""  # purged since the search: the verdict is recorded without it
    return default_storage.save(name, ContentFile(data))


def feedback_photos_purge(*, now: datetime | None = None, days: int | None = None) -> int:
    """Forget the photos of feedback older than the retention period (every one when retention is 0),
    confirmed ones too: the verdicts stay. Returns the number of photo files deleted."""
    days = settings.SEARCH_KEEP_QUERY_PHOTOS_DAYS if days is None else days
    rows = SearchFeedback.objects.exclude(photo="")
    if days > 0:
        rows = rows.filter(created_at__lt=(now or timezone.now()) - timedelta(days=days))
    names = set(rows.values_list("photo", flat=True))
    rows.update(photo="")
    # A photo still used by newer feedback on the same picture stays until that feedback is old too.
    still_used = set(SearchFeedback.objects.filter(photo__in=names).values_list("photo", flat=True))
    deleted = 0
    for name in names - still_used:
        if default_storage.exists(name):
            default_storage.delete(name)
            deleted += 1
    return deleted
