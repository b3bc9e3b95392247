"""Moderation of product photos: near-duplicates across the catalog and refusal of flagged pictures.

Perceptual hashes (imagehash.phash, 64 bits as 16 hex digits) catch resized and recompressed copies;
stored embeddings, when present, also catch crops and re-shot photos.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from PIL import Image

from catalog.models import FlaggedImage, Product, ProductImage

logger = logging.getLogger(__name__)

# Rows compared at once: bounds the memory of the pairwise blocks (BLOCK x n) for big catalogs.
BLOCK = 512


@dataclass
class DuplicateGroup:
    """Photos that show the same picture; ``reasons`` says how they were found ("phash", "embedding")."""

    images: list[ProductImage]
    reasons: set[str] = field(default_factory=set)

    @property
    def products(self) -> list[Product]:
        seen: dict[int, Product] = {}
        for image in self.images:
            seen.setdefault(image.product_id, image.product)
        return list(seen.values())


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]  # path halving keeps trees flat
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def phash_distance(a: str, b: str) -> int:
    """Hamming distance between two hex perceptual hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _hash_array(hashes: Iterable[str]) -> np.ndarray:
    return np.array([int(value, 16) for value in hashes], dtype=np.uint64)


def _distances(one: int | np.uint64, many: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.bitwise_xor(many, np.uint64(one)))


def _close_pairs(start: int, keep: np.ndarray) -> Iterable[tuple[int, int]]:
    """(i, j) with i < j for the True cells of a block of rows starting at ``start``."""
    rows, cols = np.nonzero(keep)
    rows = rows + start
    upper = cols > rows
    return zip(rows[upper].tolist(), cols[upper].tolist(), strict=True)


def near_duplicate_groups(
    *, max_distance: int | None = None, min_similarity: float | None = None
) -> list[DuplicateGroup]:
    """Groups of product photos that are near-identical, largest group first.

    Two photos are linked when their phash Hamming distance is at most ``max_distance`` or their
    stored embeddings (same model fingerprint) have cosine similarity at least ``min_similarity``;
    groups are the connected components of those links.
    """
    max_distance = settings.CATALOG_PHASH_MAX_DISTANCE if max_distance is None else max_distance
    min_similarity = settings.CATALOG_DUPLICATE_MIN_SIMILARITY if min_similarity is None else min_similarity
    ordered = ProductImage.objects.select_related("product").order_by("product_id", "display_order", "id")
    images = list(ordered)
    position = {image.pk: index for index, image in enumerate(images)}
    links = _UnionFind(len(images))
    reasons: dict[tuple[int, int], str] = {}
    for a, b in _phash_pairs(images, max_distance):
        links.union(a, b)
        reasons[a, b] = "phash"
    for a, b in _embedding_pairs(position, min_similarity):
        links.union(a, b)
        reasons.setdefault((a, b), "embedding")
    return _collect_groups(images, links, reasons)


def _phash_pairs(images: list[ProductImage], max_distance: int) -> Iterable[tuple[int, int]]:
    hashed = [index for index, image in enumerate(images) if image.phash]
    hashes = _hash_array(images[index].phash for index in hashed)
    for start in range(0, len(hashed), BLOCK):
        block = np.bitwise_count(np.bitwise_xor(hashes[start : start + BLOCK, None], hashes[None, :]))
        for a, b in _close_pairs(start, block <= max_distance):
            yield hashed[a], hashed[b]


def _embedding_pairs(position: dict[int, int], min_similarity: float) -> Iterable[tuple[int, int]]:
    from search.models import ImageEmbedding

    rows = ImageEmbedding.objects.filter(status=ImageEmbedding.Status.DONE, vector__isnull=False)
    by_model: dict[str, list[tuple[int, bytes]]] = {}
    for image_id, fingerprint, vector in rows.values_list("image_id", "fingerprint", "vector").iterator():
        if image_id in position:
            by_model.setdefault(fingerprint, []).append((position[image_id], bytes(vector)))
    for members in by_model.values():
        if len(members) < 2:
            continue
        matrix = np.stack([np.frombuffer(vector, dtype="<f4") for _, vector in members])
        matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        for start in range(0, len(members), BLOCK):
            scores = matrix[start : start + BLOCK] @ matrix.T
            for a, b in _close_pairs(start, scores >= min_similarity):
                yield members[a][0], members[b][0]


def _collect_groups(
    images: list[ProductImage], links: _UnionFind, reasons: dict[tuple[int, int], str]
) -> list[DuplicateGroup]:
    members: dict[int, list[int]] = {}
    for index in range(len(images)):
        members.setdefault(links.find(index), []).append(index)
    groups = {root: DuplicateGroup(images=[images[i] for i in found]) for root, found in members.items()}
    for (a, _b), reason in reasons.items():
        groups[links.find(a)].reasons.add(reason)
    found = [group for group in groups.values() if len(group.images) > 1]
    return sorted(found, key=lambda group: (-len(group.images), group.images[0].pk))


# --- screening uploads ----------------------------------------------------------------------------


def image_screen(*, image: Image.Image, sha256: str, phash: str, product: Product | None = None) -> list[str]:
    """Refuse a flagged picture (raises ImageRejected); warn about near-identical photos of other products."""
    _refuse_if_flagged(image=image, sha256=sha256, phash=phash)
    return _duplicate_warnings(phash=phash, product=product)


def _rejected(flagged: FlaggedImage):
    from catalog.services import ImageRejected

    return ImageRejected(f"This picture is not allowed in the shop: {flagged.reason}.", code="image_flagged")


def _refuse_if_flagged(*, image: Image.Image, sha256: str, phash: str) -> None:
    flagged = list(FlaggedImage.objects.only("id", "reason", "sha256", "phash", "fingerprint"))
    if not flagged:
        return
    max_distance = settings.CATALOG_PHASH_MAX_DISTANCE
    for row in flagged:
        if row.sha256 == sha256 or (row.phash and phash and phash_distance(row.phash, phash) <= max_distance):
            raise _rejected(row)
    match = _flagged_by_embedding(image)
    if match is not None:
        raise _rejected(match)


def _flagged_by_embedding(image: Image.Image) -> FlaggedImage | None:
    """The flagged picture the upload's embedding is closest to, if close enough (same model only)."""
    embedder = _embedder()
    if embedder is None:
        return None
    _refresh_vectors(embedder)
    candidates = list(
        FlaggedImage.objects.filter(fingerprint=embedder.fingerprint, vector__isnull=False).only(
            "id", "reason", "vector"
        )
    )
    if not candidates:
        return None
    query = np.asarray(embedder.embed([image]), dtype=np.float32)[0]
    matrix = np.stack([np.frombuffer(bytes(row.vector), dtype="<f4") for row in candidates])
    scores = matrix @ query
    best = int(np.argmax(scores))
    if scores[best] >= settings.CATALOG_FLAGGED_MIN_SIMILARITY:
        return candidates[best]
    return None


def flagged_image_vectors_refresh() -> int:
    """Embed flagged pictures that have no vector under the current model (flagged while no model
    was available, or before the model changed). Returns how many were embedded."""
    embedder = _embedder()
    return 0 if embedder is None else _refresh_vectors(embedder)


def _refresh_vectors(embedder) -> int:
    from search.embedding import load_image

    refreshed = 0
    for flagged in FlaggedImage.objects.exclude(fingerprint=embedder.fingerprint).exclude(image=""):
        try:
            with flagged.image.open("rb") as handle:
                picture = load_image(handle.read(), max_pixels=settings.CATALOG_IMAGE_MAX_PIXELS)
        except (OSError, ValueError):
            logger.exception("Flagged picture %s cannot be read: matched by hash only", flagged.pk)
            continue
        vector = np.asarray(embedder.embed([picture]), dtype="<f4")[0]
        flagged.fingerprint, flagged.vector = embedder.fingerprint, vector.tobytes()
        flagged.save(update_fields=["fingerprint", "vector"])
        refreshed += 1
    return refreshed


def _embedder():
    """The process's embedder, or None when the search side cannot provide one (logged)."""
    try:
        from search.embedder import get_embedder

        return get_embedder()
    except Exception:  # a missing model must not block every upload; hash checks still apply
        logger.exception("No embedder available: flagged images are matched by hash only")
        return None


def _duplicate_warnings(*, phash: str, product: Product | None) -> list[str]:
    if not phash:
        return []
    others = ProductImage.objects.exclude(phash="").select_related("product")
    if product is not None and product.pk is not None:
        others = others.exclude(product=product)
    rows = list(others.values_list("id", "phash"))
    if not rows:
        return []
    distances = _distances(int(phash, 16), _hash_array(value for _, value in rows))
    close = [rows[i][0] for i in np.nonzero(distances <= settings.CATALOG_PHASH_MAX_DISTANCE)[0]]
    products = Product.objects.filter(images__id__in=close).distinct().order_by("name")
    return [_duplicate_warning(other) for other in products]


def _duplicate_warning(other: Product) -> str:
    try:
        url = reverse("admin:catalog_product_change", args=[other.pk])
    except NoReverseMatch:
        url = other.get_absolute_url()
    return f"Looks like a photo of {other.name} (SKU {other.sku}): {url}"


def flagged_image_matches(*, flagged: FlaggedImage) -> list[ProductImage]:
    """Catalog photos already stored that match a flagged picture (same file or near-identical),
    so a moderator can remove what was accepted before the picture was flagged."""
    candidates = ProductImage.objects.select_related("product").order_by("product__name", "id")
    if not flagged.phash:
        return list(candidates.filter(sha256=flagged.sha256))
    max_distance = settings.CATALOG_PHASH_MAX_DISTANCE
    return [
        image
        for image in candidates.exclude(phash="")
        if image.sha256 == flagged.sha256 or phash_distance(image.phash, flagged.phash) <= max_distance
    ]


# --- flagging pictures ---------------------------------------------------------------------------


@transaction.atomic
def flagged_image_create(*, file: IO[bytes] | bytes, reason: str) -> FlaggedImage:
    """Flag a picture: uploads matching it (same file, near-identical, or same-looking) are refused."""
    from catalog.services import ImageRejected, decode_photo, read_limited

    reason = " ".join((reason or "").split())
    if not reason:
        raise ImageRejected("Say why the picture is flagged.", code="flag_reason_missing")
    photo = decode_photo(read_limited(file))
    flagged = FlaggedImage(reason=reason[:200], sha256=photo.sha256, phash=photo.phash)
    embedder = _embedder()
    if embedder is not None:
        vector = np.asarray(embedder.embed([photo.picture]), dtype="<f4")[0]
        flagged.fingerprint, flagged.vector = embedder.fingerprint, vector.tobytes()
    name = f"{hashlib.sha256(photo.data).hexdigest()}.{(photo.format or 'img').lower()}"
    flagged.image.save(name, ContentFile(photo.data), save=False)
    flagged.save()
    return flagged
