"""Finding products that look like a photo.

Candidates come from two places: the published index (only when its model fingerprint equals the
current model's: vectors of two models are never compared) and an exact search over "fresh"
embeddings the index does not hold yet (embedded or re-activated after the build). Without a usable
index every done embedding of the current model is searched exactly. Product rows are then loaded in
one query, so deleted or deactivated products disappear at once, without a rebuild.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

import numpy as np
from django.conf import settings

from catalog.models import Category, Product, ProductImage
from catalog.selectors import category_descendant_ids
from search.embedding import crop_fraction
from search.fetch import fetch_image_url
from search.index import IndexCorrupt
from search.metrics import observed_search
from search.models import ImageEmbedding
from search.query_photos import query_photo_keep
from search.selectors import fresh_embeddings
from search.uploads import Crop, QueryImageError, decode_base64_image, decode_query_image, read_upload

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
class PhotoSource:
    """Where a query photo comes from: exactly one of these is set."""

    upload: IO[bytes] | None = None  # a file being uploaded: read in chunks, capped
    base64: str | None = None  # base64 text, optionally a data: URL
    url: str | None = None  # http(s): fetched with the SSRF defences of search.fetch
    data: bytes | None = None  # bytes already in hand (the admin searches with a stored photo)


@dataclass(frozen=True)
class SearchFilters:
    category: Category | int | None = None  # its subcategories are included
    min_price: Decimal | float | None = None
    max_price: Decimal | float | None = None


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    model: Any  # the Embedder that embedded the query: the one whose vectors were searched
    timings: dict[str, float]  # milliseconds: read, validate, model, index, db, total


@dataclass(frozen=True)
class _Filters:
    category_ids: frozenset[int] | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    exclude_product_id: int | None = None


@observed_search  # counted by outcome and timed by stage here, for the API, the page and the admin alike
def photo_search(
    source: PhotoSource, *, crop: Crop | None = None, filters: SearchFilters | None = None, k: int = 12
) -> SearchResult:
    """Top k products (one hit each, with its best photo) that look like the photo: the one search by
    photo that the API, the shopper page and the admin all run.

    Raises QueryImageError / UrlFetchError (a ValueError with a stable code and a message for people)
    for a photo that cannot be used, and SearchUnavailable when no model can be loaded.
    """
    filters = filters or SearchFilters()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with _timed(timings, "read"):
        data = _read(source)
    with _timed(timings, "validate"):
        picture = decode_query_image(data, crop=crop)
    query_photo_keep(picture)  # only when SEARCH_KEEP_QUERY_PHOTOS_DAYS asks for it
    if crop:
        picture = crop_fraction(picture, crop)
    serving = serving_index()
    embedder = query_embedder(serving)
    with _timed(timings, "model"):
        vector = np.asarray(embedder.embed_one(picture), dtype=np.float32)
    wanted = _Filters(
        _category_ids(filters.category), _decimal(filters.min_price), _decimal(filters.max_price)
    )
    hits = _search(vector[None, :], embedder.fingerprint, serving, k=k, filters=wanted, timings=timings)
    timings["total"] = (time.perf_counter() - started) * 1000
    return SearchResult(hits=hits, model=embedder, timings=timings)


def similar_products(product: Product, *, k: int = 8) -> SearchResult:
    """Products whose photos look like this product's photos (never the product itself)."""
    timings: dict[str, float] = {}
    serving = serving_index()
    embedder = query_embedder(serving)
    blobs = list(
        ImageEmbedding.objects.filter(
            image__product=product, fingerprint=embedder.fingerprint, status=ImageEmbedding.Status.DONE
        ).values_list("vector", flat=True)
    )
    if not blobs:
        return SearchResult(hits=[], model=embedder, timings=timings)
    vectors = vectors_from_rows(blobs, embedder.dim)
    filters = _Filters(exclude_product_id=product.pk)
    hits = _search(vectors, embedder.fingerprint, serving, k=k, filters=filters, timings=timings)
    return SearchResult(hits=hits, model=embedder, timings=timings)


def _read(source: PhotoSource) -> bytes:
    max_bytes = settings.SEARCH_QUERY_MAX_BYTES
    if source.url:
        return fetch_image_url(source.url)
    if source.base64 is not None:
        return decode_base64_image(source.base64, max_bytes=max_bytes)
    if source.upload is not None:
        return read_upload(source.upload, max_bytes=max_bytes)
    if source.data is not None:
        return source.data  # decode_query_image checks its size
    raise QueryImageError("empty", "Choose a photo or give an image URL to search with.")


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
        rows = list(fresh_embeddings(fingerprint, self.index).values_list("image_id", "vector"))
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
    # The product's photos too: a hit shows the product's primary photo (no query per hit).
    query = (
        ProductImage.objects.filter(pk__in=ids, product__is_active=True)
        .select_related("product", "product__category")
        .prefetch_related("product__images")
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
