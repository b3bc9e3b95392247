"""Ranking products for query vectors: the vector store of the query's model, filters applied inside
the search and checked again on the product rows, one hit per product with its best photo.

The store (search.services.stores) holds only vectors of the query model (vectors of two models are
never compared): the serving build or graph of that model plus what was embedded, changed or deleted
since. Product rows are then loaded in one query (photos prefetched), so a deleted or deactivated
product that a store has not seen yet is still dropped at once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from django.conf import settings

from catalog.models import Product, ProductImage
from search.index import IndexCorrupt
from search.index.attrs import VectorFilter
from search.index.store import StoreUnavailable

from .state import ID_CHUNK, ServingIndex, serving_index
from .stores import annoy_query_store, query_store

logger = logging.getLogger(__name__)

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

    def vector_filter(self) -> VectorFilter:
        """The same conditions for the vector store (checked there first, in the database again)."""
        return VectorFilter(
            categories=self.category_ids,
            min_cents=None if self.min_price is None else math.ceil(self.min_price * 100),
            max_cents=None if self.max_price is None else math.floor(self.max_price * 100),
            exclude_product=self.exclude_product_id,
        )


class Ranker:
    """Ranks for one query: the fresh embeddings are read once, however many vectors are ranked
    (the whole photo, then each object found in it)."""

    def __init__(self, fingerprint: str, serving: ServingIndex | None, timings: dict, *, dim: int) -> None:
        # dim: the model's vector width. Required: a store made for the wrong width would be held by
        # this process and refuse every later query of the model.
        self.fingerprint, self.timings, self.dim = fingerprint, timings, dim
        with timed(timings, "db"):
            try:
                self.candidates = _CandidateSources(fingerprint, dim, serving)
            except IndexCorrupt:  # damaged since serving_index checked it: what serves now
                self.candidates = _CandidateSources(fingerprint, dim, serving_index())
        # Photo rows already loaded in this query, per filter (None: filtered out or gone). A search with
        # objects ranks the whole photo with its boxes, then each box alone: the boxes' own hits come
        # from rows the combined ranking loaded, so the query reads the database once, not once per box.
        self._rows: dict[Filters, dict[int, ProductImage | None]] = {}

    def hits(self, vectors: np.ndarray, *, k: int, filters: Filters) -> list[Hit]:
        """Top k products for the vectors (a product's score is its best over all of them)."""
        if k <= 0:
            return []
        try:
            return self._ranked(vectors, k=k, filters=filters)
        except StoreUnavailable as exc:
            # The engine went away mid-query (a Milvus server): this query and the rest of this search
            # score the stored vectors exactly, as when it cannot be reached at all; the next search
            # tries the engine again.
            logger.error("Vector store failed during a search, answered exactly instead: %s", exc)
            with timed(self.timings, "db"):
                # No serving build: the engine's own index is what failed; every stored vector is scored.
                self.candidates = _CandidateSources(self.fingerprint, self.dim, None, engine=False)
            self._rows.clear()
            return self._ranked(vectors, k=k, filters=filters)
        except IndexCorrupt:
            # A file of the serving build changed under this query (serving_index checked it before):
            # once more on what serves now, the previous build or exact search over stored vectors.
            with timed(self.timings, "db"):
                self.candidates = _CandidateSources(self.fingerprint, self.dim, serving_index())
            self._rows.clear()
            return self._ranked(vectors, k=k, filters=filters)

    def _ranked(self, vectors: np.ndarray, *, k: int, filters: Filters) -> list[Hit]:
        wanted = max(k * GROWTH, MIN_CANDIDATES)
        while True:
            with timed(self.timings, "index"):
                scores = self.candidates.top(vectors, wanted, filters)
            with timed(self.timings, "db"):
                hits = _hits(scores, filters, k, self._rows.setdefault(filters, {}))
            if len(hits) >= k or wanted >= self.candidates.size:
                return hits
            wanted *= GROWTH  # filters dropped too many candidates: look further down the ranking


class _CandidateSources:
    """The vector store of the query's model (search.services.stores): the serving build or graph of
    that model with everything embedded, changed or deleted since, filters applied inside the search."""

    def __init__(
        self, fingerprint: str, dim: int, serving: ServingIndex | None, *, engine: bool = True
    ) -> None:
        # engine=False: the stored vectors held in this process (exact), never the backend's engine.
        choose = query_store if engine else annoy_query_store
        self.store = choose(fingerprint, dim, serving)
        self.size = self.store.count()
        # (vector, filter) -> the largest n searched and its (ids, sims), best first: a box searched
        # for the combined ranking is not searched again for its own hits (the first n of a larger
        # search are the same or better neighbours).
        self._searched: dict[tuple[bytes, VectorFilter], tuple[int, np.ndarray, np.ndarray]] = {}

    def top(self, vectors: np.ndarray, n: int, filters: Filters) -> dict[int, float]:
        scores: dict[int, float] = {}
        engine_filter = filters.vector_filter()
        for vector in vectors:
            key = (np.ascontiguousarray(vector, dtype=np.float32).tobytes(), engine_filter)
            known = self._searched.get(key)
            if known is not None and known[0] >= n:
                _merge_max(scores, known[1][:n], known[2][:n])
                continue
            ids, sims = self.store.search(vector, n, engine_filter)
            self._searched[key] = (n, ids, sims)
            _merge_max(scores, ids, sims)
        return scores


def _merge_max(scores: dict[int, float], ids, sims) -> None:
    for image_id, sim in zip(ids, sims, strict=True):
        key = int(image_id)
        if float(sim) > scores.get(key, -2.0):
            scores[key] = float(sim)


def _hits(
    scores: dict[int, float], filters: Filters, k: int, images: dict[int, ProductImage | None]
) -> list[Hit]:
    """Loads the candidate photos not in ``images`` yet (active products passing the filters; the
    others are remembered as None), best photo per product."""
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    ids = [image_id for image_id, _ in ranked if image_id not in images]
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        images.update(dict.fromkeys(chunk))
        images.update({image.pk: image for image in _filtered_images(chunk, filters)})
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
