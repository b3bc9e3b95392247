"""Keeping a vector store in step with the database by reading only what changed since the last look.

Three kinds of change, each found by its timestamp column (all indexed): embeddings written
(``ImageEmbedding.updated_at``: new or re-embedded photos, photos that failed), products changed
(``Product.updated_at``: price, category, (de)activation: their photos' attributes), photos deleted
(``RemovedImage.removed_at``). A cursor remembers when it last looked. Timestamps are taken by the
writing process (on its clock) before its commit, so a row can become visible with a timestamp slightly
older than that look: each look lists (ids and timestamps only, never vectors) the rows changed since
SEARCH_SYNC_OVERLAP_SECONDS before the previous look and skips those already applied with the same
timestamp. Vectors are read only for rows that are new to the cursor.

The database stays the judge: query results are checked against the product rows (search.services.
ranking), so a change a store has not seen yet costs only a candidate, never a wrong hit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.models import Product
from search.index.attrs import NO_CATEGORY, Attrs
from search.index.store import normalised_rows
from search.models import ImageEmbedding, RemovedImage

from .state import ID_CHUNK, SHARED_STORE_BACKENDS, vector_from_bytes

logger = logging.getLogger(__name__)

_ROW_FIELDS = (
    "image_id",
    "status",
    "vector",
    "image__product_id",
    "image__product__category_id",
    "image__product__price",
    "image__product__is_active",
)
_ATTR_FIELDS = ("image_id", *_ROW_FIELDS[3:])


@dataclass
class SyncCursor:
    """When a store last looked (or, for a build, since when its rows may be missing), and what it
    applied within the overlap window before that: (kind, id) -> timestamp."""

    mark: datetime | None = None
    seen: dict[tuple[str, int], datetime] = field(default_factory=dict)


@dataclass
class SyncReport:
    upserted: int = 0
    deleted: int = 0
    vectors_read: int = 0


def price_cents(price: Decimal | float | int | None) -> int:
    return int((Decimal(str(price or 0)) * 100).to_integral_value())


def store_sync(store, cursor: SyncCursor) -> SyncReport:
    """Applies to ``store`` (a search.index VectorStore) what changed in the database after ``cursor``
    for the store's model, and advances the cursor. A cursor without a mark loads every vector once."""
    fingerprint = store.fingerprint
    looked_at = timezone.now()  # taken first: a row committed after the queries has a later timestamp
    lower = cursor.mark - timedelta(seconds=settings.SEARCH_SYNC_OVERLAP_SECONDS) if cursor.mark else None
    report = SyncReport()
    embedded = ImageEmbedding.objects.filter(fingerprint=fingerprint)
    if lower is None:
        images = _all_changes(embedded, "updated_at", "image_id")
        products, removed = {}, {}
    else:
        images = _new_changes(
            ImageEmbedding.objects, "updated_at", "image_id", "image", lower, cursor, fingerprint
        )
        products = _new_changes(Product.objects, "updated_at", "id", "product", lower, cursor)
        removed = _new_changes(RemovedImage.objects, "removed_at", "image_id", "removed", lower, cursor)
    rows = _vector_rows(fingerprint, everything=lower is None, image_ids=list(images))
    if products:
        # Changed products: new attributes for the photos the store holds, vectors only for the others
        # (e.g. a product re-activated after the build left it out).
        missing = _attributes_update(store, fingerprint, list(products), skip=set(images))
        rows += _vector_rows(fingerprint, everything=False, image_ids=list(missing))
    mark = max(looked_at, cursor.mark) if cursor.mark else looked_at
    mark_seconds = mark.timestamp()
    done = [row for row in rows if _done(row)]
    undone = [row[0] for row in rows if not _done(row)]
    report.vectors_read = len(rows)
    if done:
        ids, vectors, attrs = _arrays(done, store.dim)
        store.upsert(ids, vectors, attrs, mark=mark_seconds)
        report.upserted = len(done)
    gone = np.asarray(sorted({*undone, *removed}), dtype=np.int64)
    store.delete(gone, mark=mark_seconds)
    report.deleted = len(gone)
    _advance(cursor, mark, {("image", i): t for i, t in images.items()}, products, removed)
    return report


def mark_time(mark: float | None) -> datetime | None:
    """A store's sync mark (epoch seconds) as a time."""
    return None if mark is None else datetime.fromtimestamp(mark, UTC)


def same_mark(a: datetime | None, b: datetime | None) -> bool:
    """Equal up to the float rounding of a store's mark (seconds as a double: about a microsecond)."""
    if a is None or b is None:
        return a is b
    return abs((a - b).total_seconds()) < 1e-3


def cursor_outdated(cursor: SyncCursor, now: datetime | None = None) -> bool:
    """Removals older than SEARCH_REMOVALS_KEEP_SECONDS are pruned: a cursor that old may miss some, so
    its store must start over."""
    if cursor.mark is None:
        return False
    keep = settings.SEARCH_REMOVALS_KEEP_SECONDS - settings.SEARCH_SYNC_OVERLAP_SECONDS
    return cursor.mark < (now or timezone.now()) - timedelta(seconds=keep)


def removed_images_prune(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.SEARCH_REMOVALS_KEEP_SECONDS)
    return RemovedImage.objects.filter(removed_at__lt=cutoff).delete()[0]


def image_removed(*, image_id: int) -> None:
    """Remembers a deleted photo (inside the deleting transaction) and asks the writer to sync."""
    RemovedImage.objects.create(image_id=image_id)
    vector_sync_request()


def vector_sync_request() -> None:
    """Shared stores (hnsw, milvus) learn changes from the worker: a sync task sent after the
    transaction commits (none if it rolls back). Syncs are idempotent and cheap when another one already
    applied the change, so a bulk change may send several. Per-process stores (annoy) look by themselves
    before each query."""
    if settings.SEARCH_VECTOR_BACKEND in SHARED_STORE_BACKENDS:
        transaction.on_commit(_sync_send)


def _sync_send() -> None:
    from search.tasks import sync_vectors

    sync_vectors.delay()


def all_vector_arrays(fingerprint: str, dim: int) -> tuple[np.ndarray, np.ndarray, Attrs]:
    """Every done vector of this model with its attributes (a store built from scratch)."""
    rows = [row for row in _vector_rows(fingerprint, everything=True, image_ids=[]) if _done(row)]
    if not rows:
        return np.empty(0, np.int64), np.empty((0, dim), np.float32), Attrs.empty()
    ids, vectors, attrs = _arrays(rows, dim)
    return ids, normalised_rows(vectors, ids), attrs


def _done(row: tuple) -> bool:
    return row[1] == ImageEmbedding.Status.DONE and row[2] is not None


def _new_changes(
    queryset, stamp: str, key: str, kind: str, lower: datetime, cursor: SyncCursor, fingerprint: str = ""
) -> dict:
    """{id: timestamp} of rows changed after ``lower`` that the cursor has not applied yet (ids and
    timestamps only: the overlap window is listed again, never read again). Filtered on the indexed
    timestamp alone, so the database walks only the recent rows (other models' rows are skipped here)."""
    fields = (key, stamp, "fingerprint") if fingerprint else (key, stamp)
    listed = queryset.filter(**{f"{stamp}__gt": lower}).values_list(*fields)
    return {
        row[0]: row[1]
        for row in listed
        if cursor.seen.get((kind, row[0])) != row[1] and (not fingerprint or row[2] == fingerprint)
    }


def _all_changes(queryset, stamp: str, key: str) -> dict:
    return dict(queryset.values_list(key, stamp))


def _vector_rows(fingerprint: str, *, everything: bool, image_ids: list[int]) -> list:
    rows = ImageEmbedding.objects.filter(fingerprint=fingerprint)
    if everything:
        return list(rows.order_by("image_id").values_list(*_ROW_FIELDS).iterator(chunk_size=2000))
    ids = sorted(set(image_ids))
    found: list = []
    for start in range(0, len(ids), ID_CHUNK):
        found += rows.filter(image_id__in=ids[start : start + ID_CHUNK]).values_list(*_ROW_FIELDS)
    return found


def _attributes_update(store, fingerprint: str, product_ids: list[int], *, skip: set[int]) -> np.ndarray:
    """Sends the current attributes of the changed products' done photos (no vectors read); returns
    the image ids the store does not hold."""
    ids = sorted(set(product_ids))
    rows = []
    done = ImageEmbedding.objects.filter(fingerprint=fingerprint, status=ImageEmbedding.Status.DONE)
    for start in range(0, len(ids), ID_CHUNK):
        chunk = done.filter(image__product_id__in=ids[start : start + ID_CHUNK])
        rows += [row for row in chunk.values_list(*_ATTR_FIELDS) if row[0] not in skip]
    if not rows:
        return np.empty(0, np.int64)
    image_ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    return store.update_attrs(image_ids, _attrs([row[1:] for row in rows]))


def _arrays(rows: list, dim: int) -> tuple[np.ndarray, np.ndarray, Attrs]:
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    vectors = np.stack([vector_from_bytes(row[2]) for row in rows]).astype(np.float32, copy=False)
    if dim and vectors.shape[1] != dim:
        raise ValueError(f"stored vectors have {vectors.shape[1]} dimensions, the store holds {dim}")
    return ids, vectors, _attrs([row[3:] for row in rows])


def _attrs(columns: list[tuple]) -> Attrs:
    """From (product id, category id, price, is_active) tuples."""
    return Attrs.of(
        [row[0] for row in columns],
        [NO_CATEGORY if row[1] is None else row[1] for row in columns],
        [price_cents(row[2]) for row in columns],
        [bool(row[3]) for row in columns],
    )


def _advance(cursor: SyncCursor, mark: datetime | None, images: dict, products: dict, removed: dict) -> None:
    cursor.mark = mark
    cursor.seen.update(images)
    cursor.seen.update({("product", i): t for i, t in products.items()})
    cursor.seen.update({("removed", i): t for i, t in removed.items()})
    if mark is None:
        return
    # Only the overlap window can be listed again: older entries are never looked up.
    horizon = mark - timedelta(seconds=settings.SEARCH_SYNC_OVERLAP_SECONDS)
    cursor.seen = {key: at for key, at in cursor.seen.items() if at > horizon}
