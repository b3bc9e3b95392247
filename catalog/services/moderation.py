"""Moderation of product photos: near-duplicates across the catalog and refusal of flagged pictures.

Perceptual hashes (imagehash.phash, 64 bits as 16 hex digits) catch resized and recompressed copies.
Apps with an image model add what hashes miss (crops, re-shot photos) through catalog.hooks:
``photo_screening`` for uploads and ``look_alike_photo_pairs`` for the near-duplicates page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from catalog.hooks import PhotoWarning, flagged_image_stored, look_alike_photo_pairs
from catalog.models import FlaggedImage, Product, ProductImage

from .photos import ImageRejected, decode_photo, read_limited

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

    Two photos are linked when their phash Hamming distance is at most ``max_distance`` or an app
    connected to ``look_alike_photo_pairs`` says they show the same picture (search: embeddings of
    the same model with cosine similarity at least CATALOG_DUPLICATE_MIN_SIMILARITY); groups are the
    connected components of those links.
    """
    max_distance = settings.CATALOG_PHASH_MAX_DISTANCE if max_distance is None else max_distance
    ordered = ProductImage.objects.select_related("product").order_by("product_id", "display_order", "id")
    images = list(ordered)
    position = {image.pk: index for index, image in enumerate(images)}
    links = _UnionFind(len(images))
    reasons: dict[tuple[int, int], str] = {}
    for a, b in _phash_pairs(images, max_distance):
        links.union(a, b)
        reasons[a, b] = "phash"
    for _receiver, pairs in look_alike_photo_pairs.send(sender=None, min_similarity=min_similarity):
        for image_a, image_b in pairs or []:
            if image_a in position and image_b in position:
                a, b = sorted((position[image_a], position[image_b]))
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


def image_screen(*, sha256: str, phash: str, product: Product | None = None) -> list[PhotoWarning]:
    """The catalog's own screen: refuse a flagged picture by its hashes (raises ImageRejected); warn
    about near-identical photos of other products. Apps add their screens through photo_screening."""
    _refuse_if_flagged(sha256=sha256, phash=phash)
    return _duplicate_warnings(phash=phash, product=product)


def flagged_image_rejection(flagged: FlaggedImage) -> ImageRejected:
    return ImageRejected(f"This picture is not allowed in the shop: {flagged.reason}.", code="image_flagged")


def _refuse_if_flagged(*, sha256: str, phash: str) -> None:
    max_distance = settings.CATALOG_PHASH_MAX_DISTANCE
    for row in FlaggedImage.objects.only("id", "reason", "sha256", "phash"):
        if row.sha256 == sha256 or (row.phash and phash and phash_distance(row.phash, phash) <= max_distance):
            raise flagged_image_rejection(row)


def _duplicate_warnings(*, phash: str, product: Product | None) -> list[PhotoWarning]:
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


def _duplicate_warning(other: Product) -> PhotoWarning:
    return PhotoWarning(f"Looks like a photo of {other.name} (SKU {other.sku})", product_id=other.pk)


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
    """Flag a picture: uploads matching it (same file or near-identical) are refused at once; apps with
    an image model learn it once this commits (flagged_image_stored) to refuse re-shot copies too."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ImageRejected("Say why the picture is flagged.", code="flag_reason_missing")
    photo = decode_photo(read_limited(file))
    flagged = FlaggedImage(reason=reason[:200], sha256=photo.sha256, phash=photo.phash)
    name = f"{hashlib.sha256(photo.data).hexdigest()}.{(photo.format or 'img').lower()}"
    flagged.image.save(name, ContentFile(photo.data), save=False)
    flagged.save()
    transaction.on_commit(lambda: flagged_image_stored.send(sender=FlaggedImage, flagged_id=flagged.pk))
    return flagged
