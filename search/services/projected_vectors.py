"""Vectors of a projected model (search.embedding.projected) from the backbone's stored ones.

A projected vector is the projection of the backbone's L2-normalised vector of the same photo, which
the database already holds (ImageEmbedding under the backbone's fingerprint, for the same content):
projecting it gives the vector the projected model would compute, without running the backbone again.
So switching to a projection, or trying one before switching, re-embeds a catalog in seconds; photos
without such a vector go through the model as usual.
"""

from __future__ import annotations

import numpy as np
from django.db import transaction
from django.db.models import F

from catalog.models import ProductImage
from search.models import ImageEmbedding

from .state import ID_CHUNK, vector_to_bytes, vectors_from_rows


def projected_from_backbone(todo: list[ProductImage], embedder) -> tuple[list[ProductImage], int]:
    """Stores the projected vector of each photo in ``todo`` whose backbone vector is stored for its
    current content; returns (the photos still to embed, how many were stored). A model without a
    projection gets ``todo`` back untouched."""
    projection = embedder.projection
    if projection is None or not todo:
        return todo, 0
    base = embedder.backbone.fingerprint
    by_id = {image.pk: image for image in todo}
    stored = 0
    ids = sorted(by_id)
    for start in range(0, len(ids), ID_CHUNK):
        rows = list(
            ImageEmbedding.objects.filter(
                image_id__in=ids[start : start + ID_CHUNK],
                fingerprint=base,
                status=ImageEmbedding.Status.DONE,
                content_sha256=F("image__sha256"),
                dim=projection.in_dim,
            ).values_list("image_id", "content_sha256", "vector")
        )
        if not rows:
            continue
        vectors = projection.project(vectors_from_rows([row[2] for row in rows], projection.in_dim))
        stored += _store(rows, vectors, embedder.fingerprint)
        for row in rows:
            by_id.pop(row[0], None)
    return [image for image in todo if image.pk in by_id], stored


def _store(rows: list, vectors: np.ndarray, fingerprint: str) -> int:
    with transaction.atomic():
        # A row of this model left by an earlier failure or an older content is replaced.
        ImageEmbedding.objects.filter(fingerprint=fingerprint, image_id__in=[row[0] for row in rows]).delete()
        created = ImageEmbedding.objects.bulk_create(
            [
                ImageEmbedding(
                    image_id=image_id,
                    fingerprint=fingerprint,
                    content_sha256=sha256,
                    status=ImageEmbedding.Status.DONE,
                    vector=vector_to_bytes(vector),
                    dim=int(len(vector)),
                    attempts=1,
                )
                for (image_id, sha256, _), vector in zip(rows, vectors, strict=True)
            ]
        )
    return len(created)
