"""Finding products that look like a photo.

Candidates come from two places: the published index (only when its model fingerprint equals the
current model's: vectors of two models are never compared) and an exact search over "fresh"
embeddings the index does not hold yet (embedded or re-activated after the build). Without a usable
index every done embedding of the current model is searched exactly. Product rows are then loaded in
one query, so deleted or deactivated products disappear at once, without a rebuild.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.conf import settings
from django.db.models import Q
from PIL import Image

from catalog.models import Category, Product, ProductImage
from catalog.selectors import category_descendant_ids
from search.index import IndexCorrupt
from search.models import ImageEmbedding

from .embeddings import ID_CHUNK
from .state import ServingIndex, query_embedder, serving_index, vectors_from_rows

MIN_CANDIDATES = 32
GROWTH = 4  # candidate pool multiplier when filters drop too many


@dataclass(frozen=True)
class Hit:
    product: Product
    image: ProductImage  # the product's photo that matched best
    score: float  # cosine similarity clipped to [0, 1]; 1 = the same picture


@dataclass(frozen=True)
class _Filters:
    category_ids: frozenset[int] | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    exclude_product_id: int | None = None


def search_by_image(
    image: Image.Image | bytes,
    *,
    k: int = 12,
    category: Category | int | None = None,
    min_price: Decimal | float | None = None,
    max_price: Decimal | float | None = None,
    crop=None,
    timings: dict | None = None,
) -> list[Hit]:
    """Top k products (one hit each, best photo) for a query photo. timings gets milliseconds for
    "decode", "model", "index", "db" and "total". Raises SearchUnavailable without a model and the
    loader's ImageDecodeError/ImageTooLarge (ValueError) for a bad photo."""
    timings = timings if timings is not None else {}
    started = time.perf_counter()
    with _timed(timings, "decode"):
        picture = _query_picture(image, crop)
    serving = serving_index()
    embedder = query_embedder(serving)
    with _timed(timings, "model"):
        vector = np.asarray(embedder.embed_one(picture), dtype=np.float32)
    filters = _Filters(_category_ids(category), _decimal(min_price), _decimal(max_price))
    hits = _search(vector[None, :], embedder.fingerprint, serving, k=k, filters=filters, timings=timings)
    timings["total"] = (time.perf_counter() - started) * 1000
    return hits


def similar_products(product: Product, *, k: int = 8, timings: dict | None = None) -> list[Hit]:
    """Products whose photos look like this product's photos (never the product itself)."""
    timings = timings if timings is not None else {}
    serving = serving_index()
    embedder = query_embedder(serving)
    blobs = list(
        ImageEmbedding.objects.filter(
            image__product=product, fingerprint=embedder.fingerprint, status=ImageEmbedding.Status.DONE
        ).values_list("vector", flat=True)
    )
    if not blobs:
        return []
    vectors = vectors_from_rows(blobs, embedder.dim)
    filters = _Filters(exclude_product_id=product.pk)
    return _search(vectors, embedder.fingerprint, serving, k=k, filters=filters, timings=timings)


def _query_picture(image: Image.Image | bytes, crop) -> Image.Image:
    from search.embedding import crop_fraction, load_image, to_rgb

    if isinstance(image, bytes | bytearray):
        # Decode like catalog photos are decoded (JPEG draft scaling), so the very same photo scores 1.0;
        # a crop keeps full resolution: it is scaled up afterwards.
        draft = None if crop else settings.SEARCH_RESIZE
        picture = load_image(io.BytesIO(image), max_pixels=settings.SEARCH_QUERY_MAX_PIXELS, draft_size=draft)
    else:
        picture = to_rgb(image)  # alpha composited on white, like catalog photos
    return crop_fraction(picture, crop) if crop else picture


def _search(
    vectors: np.ndarray,
    fingerprint: str,
    serving: ServingIndex | None,
    *,
    k: int,
    filters: _Filters,
    timings: dict,
) -> list[Hit]:
    if k <= 0:
        return []
    try:
        return _ranked_hits(vectors, fingerprint, serving, k=k, filters=filters, timings=timings)
    except IndexCorrupt:
        # A file of the serving build changed under this query (serving_index checked it before):
        # once more on what serves now, the previous build or exact search over stored vectors.
        serving = serving_index()
        return _ranked_hits(vectors, fingerprint, serving, k=k, filters=filters, timings=timings)


def _ranked_hits(
    vectors: np.ndarray,
    fingerprint: str,
    serving: ServingIndex | None,
    *,
    k: int,
    filters: _Filters,
    timings: dict,
) -> list[Hit]:
    with _timed(timings, "db"):
        candidates = _CandidateSources(fingerprint, serving)
    wanted = max(k * GROWTH, MIN_CANDIDATES)
    while True:
        with _timed(timings, "index"):
            scores = candidates.top(vectors, wanted)
        with _timed(timings, "db"):
            hits = _hits(scores, filters, k)
        if len(hits) >= k or wanted >= candidates.size:
            return hits
        wanted *= GROWTH  # filters dropped too many candidates: look further down the ranking


class _CandidateSources:
    """The serving index (when built by this model) plus exactly-searched fresh embeddings."""

    def __init__(self, fingerprint: str, serving: ServingIndex | None) -> None:
        self.index = serving if serving is not None and serving.fingerprint == fingerprint else None
        fresh = ImageEmbedding.objects.filter(
            fingerprint=fingerprint, status=ImageEmbedding.Status.DONE, image__product__is_active=True
        )
        fresh = _not_in_index(fresh, self.index)
        rows = list(fresh.values_list("image_id", "vector"))
        self.fresh_ids = np.array([row[0] for row in rows], dtype=np.int64)
        self.fresh_vectors = vectors_from_rows([row[1] for row in rows], 0) if rows else None
        self.size = len(rows) + (len(self.index.reader) if self.index else 0)

    def top(self, vectors: np.ndarray, n: int) -> dict[int, float]:
        scores: dict[int, float] = {}
        if self.index is not None:
            for vector in vectors:
                ids, sims = self.index.reader.search(
                    vector,
                    n,
                    search_k=settings.SEARCH_ANNOY_SEARCH_K,
                    exact_threshold=settings.SEARCH_EXACT_THRESHOLD,
                )
                _merge_max(scores, ids, sims)
        if self.fresh_vectors is not None:
            # Fresh vectors replace what the index holds for the same photo (it may be outdated).
            sims = (self.fresh_vectors @ vectors.T).max(axis=1)
            order = np.argsort(-sims)[:n]
            scores.update({int(self.fresh_ids[i]): float(sims[i]) for i in order})
        return scores


def _not_in_index(fresh, index: ServingIndex | None):
    if index is None:
        return fresh
    until = index.build.embeddings_until if index.build else None
    if until is None:
        return fresh
    # Embedded after the build, or product changed since (e.g. re-activated: it was left out).
    return fresh.filter(Q(updated_at__gt=until) | Q(image__product__updated_at__gt=until))


def _merge_max(scores: dict[int, float], ids, sims) -> None:
    for image_id, sim in zip(ids, sims, strict=True):
        key = int(image_id)
        if float(sim) > scores.get(key, -2.0):
            scores[key] = float(sim)


def _hits(scores: dict[int, float], filters: _Filters, k: int) -> list[Hit]:
    """Loads the candidate photos (active products passing the filters), best photo per product."""
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    ids = [image_id for image_id, _ in ranked]
    images: dict[int, ProductImage] = {}
    for start in range(0, len(ids), ID_CHUNK):
        query = _filtered_images(ids[start : start + ID_CHUNK], filters)
        images.update({image.pk: image for image in query})
    hits: list[Hit] = []
    seen: set[int] = set()
    for image_id, score in ranked:
        image = images.get(image_id)
        if image is None or image.product_id in seen:
            continue
        seen.add(image.product_id)
        hits.append(Hit(product=image.product, image=image, score=min(1.0, max(0.0, score))))
        if len(hits) == k:
            break
    return hits


def _filtered_images(ids: list[int], filters: _Filters):
    query = ProductImage.objects.filter(pk__in=ids, product__is_active=True).select_related(
        "product", "product__category"
    )
    if filters.category_ids is not None:
        query = query.filter(product__category_id__in=filters.category_ids)
    if filters.min_price is not None:
        query = query.filter(product__price__gte=filters.min_price)
    if filters.max_price is not None:
        query = query.filter(product__price__lte=filters.max_price)
    if filters.exclude_product_id is not None:
        query = query.exclude(product_id=filters.exclude_product_id)
    return query


def _category_ids(category: Category | int | None) -> frozenset[int] | None:
    """The category and all its descendants (a shopper filtering "Tools" wants "Hammers" too)."""
    return None if category is None else frozenset(category_descendant_ids(category))


def _decimal(value: Decimal | float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@contextmanager
def _timed(timings: dict, key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + (time.perf_counter() - start) * 1000
