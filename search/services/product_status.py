"""Where each product stands in the search index, for the product admin's list and form: indexed,
embedded (searchable exactly until the next build), pending, failed or without a photo."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.db.models import F

from catalog.models import Product, ProductImage
from search.embedder import SearchUnavailable, current_embedder
from search.index import IndexCorrupt
from search.models import ImageEmbedding

from .state import ID_CHUNK, ServingIndex, serving_index


class ProductIndexState(StrEnum):
    """Where one product stands (the product admin)."""

    INDEXED = "indexed"  # in the serving build
    EMBEDDED = "embedded"  # searchable exactly until the next build
    PENDING = "pending"
    FAILED = "failed"  # every photo failed
    NO_PHOTO = "no-photo"


@dataclass(frozen=True)
class ProductIndexStatus:
    state: ProductIndexState
    reason: str = ""


def product_index_statuses(products: Iterable[Product | int]) -> dict[int, ProductIndexStatus]:
    """Per product: "indexed" (in the serving build), "embedded" (searchable exactly until the next
    build), "pending", "failed" (every photo failed; reason given) or "no-photo"."""
    product_ids = [p.pk if isinstance(p, Product) else int(p) for p in products]
    try:
        fingerprint = current_embedder().fingerprint
    except SearchUnavailable:
        fingerprint = ""
    found: dict[int, list[tuple]] = {}
    photos: dict[int, int] = {}
    for start in range(0, len(product_ids), ID_CHUNK):  # a whole admin list: stay under SQL limits
        chunk = product_ids[start : start + ID_CHUNK]
        for product_id, *rest in _embedding_rows(chunk, fingerprint):
            found.setdefault(product_id, []).append(tuple(rest))
        photos.update(_photo_counts(chunk))
    done_ids = [row[0] for group in found.values() for row in group if row[1] == ImageEmbedding.Status.DONE]
    indexed = _indexed_image_ids(serving_index(), fingerprint, done_ids)
    return {pid: _product_status(photos.get(pid, 0), found.get(pid, []), indexed) for pid in product_ids}


def _embedding_rows(product_ids: list[int], fingerprint: str):
    """(product_id, image_id, status, error) for embeddings of the photos' current content."""
    return ImageEmbedding.objects.filter(
        image__product_id__in=product_ids, fingerprint=fingerprint, content_sha256=F("image__sha256")
    ).values_list("image__product_id", "image_id", "status", "error")


def _product_status(photos: int, rows: list[tuple], indexed: set[int]) -> ProductIndexStatus:
    """rows: (image_id, status, error) of the product's embeddings for their current content."""
    if photos == 0:
        return ProductIndexStatus(ProductIndexState.NO_PHOTO, "The product has no photo.")
    done = [row for row in rows if row[1] == ImageEmbedding.Status.DONE]
    if any(row[0] in indexed for row in done):
        return ProductIndexStatus(ProductIndexState.INDEXED)
    if done:
        return ProductIndexStatus(
            ProductIndexState.EMBEDDED, "Searchable now; joins the index at the next build."
        )
    failed = [row for row in rows if row[1] == ImageEmbedding.Status.FAILED]
    if len(failed) == photos:
        return ProductIndexStatus(
            ProductIndexState.FAILED, failed[0][2] or "The photo could not be embedded."
        )
    return ProductIndexStatus(ProductIndexState.PENDING, "Waiting for its photo to be embedded.")


def _indexed_image_ids(serving: ServingIndex | None, fingerprint: str, image_ids: list[int]) -> set[int]:
    if serving is None or serving.fingerprint != fingerprint or not image_ids:
        return set()
    try:
        return serving.contains(image_ids)
    except IndexCorrupt:  # damaged since serving_index checked it: the next call serves another build
        return set()


def _photo_counts(product_ids: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    photos = ProductImage.objects.filter(product_id__in=product_ids)
    for product_id in photos.values_list("product_id", flat=True):
        counts[product_id] = counts.get(product_id, 0) + 1
    return counts
