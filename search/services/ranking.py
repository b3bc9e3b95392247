"""Ranking products for query vectors: the serving index plus the exactly searched fresh embeddings,
filters applied on the product rows, one hit per product with its best photo.

Candidates come from two places: the published index (only when its model fingerprint equals the
query model's: vectors of two models are never compared) and an exact search over "fresh"
embeddings the index does not hold yet (search.selectors.fresh_embeddings). Without a usable index
every done embedding of that model is searched exactly. Product rows are then loaded in one query
(photos prefetched), so deleted or deactivated products disappear at once, without a rebuild.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.conf import settings

from catalog.models import Product, ProductImage
from search.index import IndexCorrupt
from search.selectors import fresh_embeddings

from .embeddings import ID_CHUNK
from .state import ServingIndex, serving_index, vectors_from_rows

MIN_CANDIDATES = 32
GROWTH = 4  # candidate pool multiplier when filters drop too many


@dataclass(frozen=True)
class Hit:
    product: Product
    image: ProductImage  # the product's photo that matched best
    score: float  # cosine similarity clipped to [0, 1]; 1 = the same picture

    @property
    def match(self) -> str:
        """How close, in words: "close", "similar" or "weak" (SEARCH_CLOSE_MATCH, SEARCH_SIMILAR_MATCH)."""
        return match_level(self.score)


def match_level(score: float) -> str:
    """Thresholds measured by bench/bench_thresholds.py (docs/benchmarks.md): a weak hit is only the
    nearest item, never shown as a match."""
    if score >= settings.SEARCH_CLOSE_MATCH:
        return "close"
    if score >= settings.SEARCH_SIMILAR_MATCH:
        return "similar"
    return "weak"


@dataclass(frozen=True)
class Filters:
    category_ids: frozenset[int] | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    exclude_product_id: int | None = None


class Ranker:
    """Ranks for one query: the fresh embeddings are read once, however many vectors are ranked
    (the whole photo, then each object found in it)."""

    def __init__(self, fingerprint: str, serving: ServingIndex | None, timings: dict) -> None:
        self.fingerprint, self.timings = fingerprint, timings
        with timed(timings, "db"):
            self.candidates = _CandidateSources(fingerprint, serving)

    def hits(self, vectors: np.ndarray, *, k: int, filters: Filters) -> list[Hit]:
        """Top k products for the vectors (a product's score is its best over all of them)."""
        if k <= 0:
            return []
        try:
            return self._ranked(vectors, k=k, filters=filters)
        except IndexCorrupt:
            # A file of the serving build changed under this query (serving_index checked it before):
            # once more on what serves now, the previous build or exact search over stored vectors.
            with timed(self.timings, "db"):
                self.candidates = _CandidateSources(self.fingerprint, serving_index())
            return self._ranked(vectors, k=k, filters=filters)

    def _ranked(self, vectors: np.ndarray, *, k: int, filters: Filters) -> list[Hit]:
        wanted = max(k * GROWTH, MIN_CANDIDATES)
        while True:
            with timed(self.timings, "index"):
                scores = self.candidates.top(vectors, wanted)
            with timed(self.timings, "db"):
                hits = _hits(scores, filters, k)
            if len(hits) >= k or wanted >= self.candidates.size:
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


def _hits(scores: dict[int, float], filters: Filters, k: int) -> list[Hit]:
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


def _filtered_images(ids: list[int], filters: Filters):
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


@contextmanager
def timed(timings: dict, key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + (time.perf_counter() - start) * 1000
