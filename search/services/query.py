"""Finding products that look like a photo: the one query service (photo_search) and similar products.

Reading, decoding and keeping the query photo, finding the things in it, embedding: here. Ranking the
catalog for the query vectors: search.services.ranking.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

import numpy as np
from django.conf import settings
from PIL import Image

from catalog.models import Category, Product
from catalog.selectors import category_descendant_ids
from search.fetch import fetch_image_url
from search.metrics import observed_search
from search.models import ImageEmbedding
from search.query_photos import query_photo_keep
from search.uploads import Crop, QueryImageError, decode_base64_image, decode_query_image, read_upload

from .ranking import Filters, Hit, Ranker, timed
from .state import query_embedder, serving_index, vectors_from_rows


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
class ObjectMatch:
    """One thing found in the shopper's photo: where (fractions of the photo), how sure, what matches."""

    box: tuple[float, float, float, float]  # x, y, w, h
    score: float  # 0..1: how clearly the model sees one thing there
    hits: list[Hit]


@dataclass(frozen=True)
class SearchQuery:
    """What one search by photo looked at: the photo (by the sha256 of its bytes), the crop searched and
    the model. Shopper feedback refers to it through a signed query id (search.services.feedback)."""

    photo_sha256: str
    crop: Crop | None
    fingerprint: str
    kept_photo: str = ""  # its storage name when retention kept the photo (search.query_photos), else ""


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    model: Any  # the Embedder that embedded the query: the one whose vectors were searched
    timings: dict[str, float]  # milliseconds: read, validate, (objects,) model, index, db, total
    objects: list[ObjectMatch] = field(default_factory=list)  # best first; empty with a crop or objects off
    query: SearchQuery | None = None  # a search by photo's query (None for similar products)
    # The query photo's upright (width, height) as decoded, maybe reduced (a large JPEG decodes in draft
    # mode): its aspect ratio is the photo's, so a page can reserve the photo's box before it arrives.
    photo_size: tuple[int, int] | None = None

    @property
    def nothing_close(self) -> bool:
        """No hit is even "similar": what is shown are only the nearest items, and the shopper is told."""
        return not self.hits or self.hits[0].match == "weak"


@observed_search  # counted by outcome and timed by stage here, for the API, the page and the admin alike
def photo_search(
    source: PhotoSource,
    *,
    crop: Crop | None = None,
    filters: SearchFilters | None = None,
    k: int = 12,
    objects: bool = True,
    object_k: int | None = None,
    shopper: bool = True,
    model=None,
) -> SearchResult:
    """Top k products (one hit each, with its best photo) that look like the photo: the one search by
    photo that the API, the shopper page and the admin all run.

    Without a crop (and with ``objects``) the things in the photo are found first (search.embedding.
    objects): each is cropped from the detailed photo and embedded in one batch with the whole photo,
    products are ranked by their best evidence over the whole photo and the objects, and each object
    gets its own top ``object_k`` hits. An explicit crop searches just that region, as drawn.

    Raises QueryImageError / UrlFetchError (a ValueError with a stable code and a message for people)
    for a photo that cannot be used, and SearchUnavailable when no model can be loaded.

    ``shopper=False`` is for photos the site made itself (the relevance self-test): the search is the
    same, but the photo is never kept as a shopper's query photo nor counted in the search metrics.
    ``model`` (the self-test's trial of a projection before staff switch to it, with shopper=False)
    searches with that model instead of the serving one: its stored vectors are searched exactly.
    """
    if model is not None and shopper:
        raise ValueError("only the site's own searches (shopper=False) may choose their model")
    filters = filters or SearchFilters()
    find = objects and crop is None and settings.SEARCH_MAX_OBJECTS > 0
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with timed(timings, "read"):
        data = _read(source)
    with timed(timings, "validate"):
        picture = decode_query_image(data, crop=crop)
        detailed = _detailed(data, picture) if find else None
    photo_size = picture.size
    photo_sha256 = hashlib.sha256(data).hexdigest()
    # Only a shopper's photo, and only when SEARCH_KEEP_QUERY_PHOTOS_DAYS asks for it; the detailed
    # decode when there is one, so that a kept photo still shows the things found in it sharply.
    kept = (
        query_photo_keep(picture if detailed is None else detailed, photo_sha256=photo_sha256)
        if shopper
        else ""
    )
    if crop:
        # Imported here, not at the top: search.embedding imports torch (~3 s), which no process
        # should pay at start-up (migrate, shell, the web server before its first search).
        from search.embedding import crop_fraction

        picture = crop_fraction(picture, crop)
    serving = serving_index()
    embedder = model or query_embedder(serving)
    limits = Filters(
        _category_ids(filters.category), _decimal(filters.min_price), _decimal(filters.max_price)
    )
    ranker = Ranker(embedder.fingerprint, serving, timings, dim=embedder.dim)
    if detailed is None:
        with timed(timings, "model"):
            vector = np.asarray(embedder.embed_one(picture), dtype=np.float32)
        hits, found = ranker.hits(vector[None, :], k=k, filters=limits), []
    else:
        hits, found = _search_with_objects(
            picture, detailed, embedder, ranker, k=k, object_k=object_k, filters=limits
        )
    timings["total"] = (time.perf_counter() - started) * 1000
    query = SearchQuery(photo_sha256, crop, embedder.fingerprint, kept)
    return SearchResult(
        hits=hits, model=embedder, timings=timings, objects=found, query=query, photo_size=photo_size
    )


def _detailed(data: bytes, picture: Image.Image) -> Image.Image:
    """The photo with the detail object finding and box crops need (one more decode only when the
    whole-photo decode was reduced, i.e. a large JPEG)."""
    if min(picture.size) >= settings.SEARCH_OBJECTS_DETAIL or min(picture.size) >= min(_header_size(data)):
        return picture
    return decode_query_image(data, detail_size=settings.SEARCH_OBJECTS_DETAIL)


def _header_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as header:
        return header.size


def _search_with_objects(
    picture: Image.Image,
    detailed: Image.Image,
    embedder,
    ranker: Ranker,
    *,
    k: int,
    object_k: int | None,
    filters: Filters,
) -> tuple[list[Hit], list[ObjectMatch]]:
    from search.embedding import crop_fraction
    from search.embedding.objects import ObjectFinder

    finder = ObjectFinder(
        max_objects=settings.SEARCH_MAX_OBJECTS,
        long_side=settings.SEARCH_OBJECTS_LONG_SIDE,
        max_area=settings.SEARCH_OBJECTS_MAX_AREA,
        map_precision=settings.SEARCH_OBJECTS_MAP_PRECISION,
        min_score=settings.SEARCH_OBJECTS_MIN_SCORE,
    )
    with timed(ranker.timings, "objects"):
        boxes = finder.find(embedder, detailed)
    with timed(ranker.timings, "model"):
        crops = [crop_fraction(detailed, _inside(box.crop)) for box in boxes]
        vectors = np.asarray(embedder.embed([picture, *crops]), dtype=np.float32)
    # Ranked by the best evidence: a product matching any box (or the whole photo) well ranks high,
    # parts of a thing included; the shopper is shown the things alone.
    hits = ranker.hits(vectors, k=k, filters=filters)
    per_object = object_k or settings.SEARCH_OBJECT_RESULTS
    found = [
        ObjectMatch(
            box=tuple(round(value, 4) for value in box.crop),
            score=round(float(box.score), 4),
            hits=ranker.hits(vector[None, :], k=per_object, filters=filters),
        )
        for box, vector in zip(boxes, vectors[1:], strict=True)
        if not box.part
    ]
    return hits, found


def _inside(crop: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """A box as a valid crop (x, y < 1; x + w, y + h <= 1) despite float rounding."""
    x, y = min(max(crop[0], 0.0), 0.999), min(max(crop[1], 0.0), 0.999)
    return x, y, max(min(crop[2], 1.0 - x), 1e-3), max(min(crop[3], 1.0 - y), 1e-3)


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
    filters = Filters(exclude_product_id=product.pk)
    hits = Ranker(embedder.fingerprint, serving, timings, dim=embedder.dim).hits(
        vectors, k=k, filters=filters
    )
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


def _category_ids(category: Category | int | None) -> frozenset[int] | None:
    """The category and all its descendants (a shopper filtering "Tools" wants "Hammers" too)."""
    return None if category is None else frozenset(category_descendant_ids(category))


def _decimal(value: Decimal | float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))
