"""What the image model adds to the catalog's moderation (connected in SearchConfig.ready through
catalog.hooks): refusing re-shot or cropped copies of flagged pictures, and finding look-alike photos
that perceptual hashes miss. The catalog's own hash checks work without any of this.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from django.conf import settings
from PIL import Image

from catalog.imaging import load_image
from catalog.models import FlaggedImage
from catalog.services.moderation import flagged_image_rejection
from search.embedder import SearchUnavailable, current_embedder
from search.models import ImageEmbedding
from shop_search.storage import STORAGE_ERRORS

logger = logging.getLogger(__name__)
BLOCK = 512  # rows compared at once: bounds the memory of the pairwise blocks (BLOCK x n)


def flagged_image_screen(*, picture: Image.Image, **_photo) -> list:
    """photo_screening receiver: raise ImageRejected when the upload looks like a flagged picture
    (embedding similarity under the current model); no warnings of its own."""
    if not FlaggedImage.objects.exists():
        return []  # the common case: no model run at all
    embedder = _screening_model()
    if embedder is None:
        return []
    _refresh_vectors(embedder)
    candidates = list(
        FlaggedImage.objects.filter(fingerprint=embedder.fingerprint, vector__isnull=False).only(
            "id", "reason", "vector"
        )
    )
    if not candidates:
        return []
    query = np.asarray(embedder.embed([picture]), dtype=np.float32)[0]
    matrix = np.stack([np.frombuffer(bytes(row.vector), dtype="<f4") for row in candidates])
    scores = matrix @ query
    best = int(np.argmax(scores))
    if scores[best] >= settings.CATALOG_FLAGGED_MIN_SIMILARITY:
        raise flagged_image_rejection(candidates[best])
    return []


def flagged_image_vectors_refresh() -> int:
    """Embed flagged pictures that have no vector under the current model (just flagged, flagged while
    no model was available, or before the model changed). Returns how many were embedded."""
    embedder = _screening_model()
    return 0 if embedder is None else _refresh_vectors(embedder)


def _refresh_vectors(embedder) -> int:
    refreshed = 0
    for flagged in FlaggedImage.objects.exclude(fingerprint=embedder.fingerprint).exclude(image=""):
        try:
            with flagged.image.open("rb") as handle:
                picture = load_image(handle.read(), max_pixels=settings.CATALOG_IMAGE_MAX_PIXELS)
        except (*STORAGE_ERRORS, ValueError):
            logger.exception("Flagged picture %s cannot be read: matched by hash only", flagged.pk)
            continue
        vector = np.asarray(embedder.embed([picture]), dtype="<f4")[0]
        FlaggedImage.objects.filter(pk=flagged.pk).update(
            fingerprint=embedder.fingerprint, vector=vector.tobytes()
        )
        refreshed += 1
    return refreshed


def look_alike_photo_pairs(*, min_similarity: float | None = None, **_kwargs) -> list[tuple[int, int]]:
    """look_alike_photo_pairs receiver: (image id, image id) pairs whose stored embeddings (same model)
    have cosine similarity at least ``min_similarity`` (CATALOG_DUPLICATE_MIN_SIMILARITY by default)."""
    if min_similarity is None:
        min_similarity = settings.CATALOG_DUPLICATE_MIN_SIMILARITY
    rows = ImageEmbedding.objects.filter(status=ImageEmbedding.Status.DONE, vector__isnull=False)
    by_model: dict[str, list[tuple[int, bytes]]] = {}
    for image_id, fingerprint, vector in rows.values_list("image_id", "fingerprint", "vector").iterator():
        by_model.setdefault(fingerprint, []).append((image_id, bytes(vector)))
    pairs: list[tuple[int, int]] = []
    for members in by_model.values():
        if len(members) >= 2:
            pairs.extend(_close_pairs(members, min_similarity))
    return pairs


def _close_pairs(members: list[tuple[int, bytes]], min_similarity: float) -> Iterable[tuple[int, int]]:
    matrix = np.stack([np.frombuffer(vector, dtype="<f4") for _, vector in members])
    matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    for start in range(0, len(members), BLOCK):
        scores = matrix[start : start + BLOCK] @ matrix.T
        rows, cols = np.nonzero(scores >= min_similarity)
        rows = rows + start
        for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
            if a < b:
                yield members[a][0], members[b][0]


def _screening_model():
    """The current model, or None when it cannot be loaded (logged): uploads must not all fail then;
    the catalog's hash checks still apply."""
    try:
        return current_embedder()
    except SearchUnavailable:
        logger.exception("No image model: flagged pictures are matched by hash only")
        return None
