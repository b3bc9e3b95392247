"""A projection's trial self-test, before staff switch to it (search.services.relevance).

The trial searches the held-out products' variants through the shoppers' query service with the
backbone followed by the projection; the catalog's vectors of that model are the stored backbone ones,
projected (search.services.projected_vectors), searched exactly since no index of that model exists
yet. When it succeeds, the serving model's run on the very same variants follows (unless one exists,
search.services.relevance), so the admin shows the two side by side: the same seed, photos, recipes
and scenes.
"""

from __future__ import annotations

import logging

from search.embedder import backbone_embedder, stored_projection
from search.models import RelevanceRun

from .embeddings import pending_images
from .projected_vectors import projected_from_backbone

logger = logging.getLogger(__name__)


class TrialUnavailable(Exception):
    """The projection cannot be tried on the backbone in use (another backbone, damaged weights)."""


def trial_model(run: RelevanceRun):
    """The model a trial run searches with, its catalog vectors stored first."""
    from search.embedding.projected import ProjectedEmbedder

    row = run.projection
    backbone = backbone_embedder()
    if row.backbone_fingerprint != backbone.fingerprint:
        raise TrialUnavailable(
            f"Projection #{row.pk} was trained on {row.backbone_fingerprint}, not on the backbone in use "
            f"({backbone.fingerprint})."
        )
    model = ProjectedEmbedder(backbone, stored_projection(row.fingerprint))
    todo = list(pending_images(model.fingerprint).filter(product__is_active=True).order_by("pk"))
    left, stored = projected_from_backbone(todo, model)
    logger.info(
        "Trial of projection %s: %s catalog vectors projected, %s without one", row.pk, stored, len(left)
    )
    return model
